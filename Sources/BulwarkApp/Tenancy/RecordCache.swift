import Fluent
import Foundation
import NIOCore

/// Tenant records (clients, companies) by id, kept for a second: nearly every request looks up the client it acts on,
/// and each Fluent lookup costs more than the rest of a small request. A change through Fluent in this process empties
/// the cache at once (`InvalidateOnChange`); other processes see it within `ttl`. The cached models are shared between
/// requests and must never be changed: load a fresh one to change it.
final class RecordCache: Sendable {
    private let entries: ShortLivedCache<any Sendable>

    init(ttl: TimeAmount = .seconds(1), capacity: Int = 10_000) {
        entries = ShortLivedCache(ttl: ttl, capacity: capacity, refreshAfter: .nanoseconds(ttl.nanoseconds / 2))
    }

    /// `db` is asked for only on a miss: a request's `req.db` is built anew each time it is read.
    func find<M: FluentKit.Model & Sendable>(_ type: M.Type, _ id: M.IDValue, on db: @autoclosure () -> any Database) async throws -> M?
        where M.IDValue == UUID {
        let key = M.schema + ":" + id.lowercasedString
        if let cached = entries.value(for: key) as? M { return cached }
        let generation = entries.generation
        guard let model = try await M.find(id, on: db()) else { return nil }
        entries.store(model, for: key, generation: generation)
        return model
    }

    func invalidateAll() { entries.invalidateAll() }
}
