import Fluent
import Foundation
import NIOConcurrencyHelpers
import NIOCore

/// Tenant records (clients, companies) by id, kept for a second: nearly every request looks up the client it acts on,
/// and each Fluent lookup costs more than the rest of a small request. A change through Fluent in this process empties
/// the cache at once (`InvalidateOnChange`); other processes see it within `ttl`. The cached models are shared between
/// requests and must never be changed: load a fresh one to change it.
final class RecordCache: Sendable {
    let ttl: TimeAmount
    let capacity: Int
    /// Nothing is stored this long after an invalidation (a change commits after the hook that announced it).
    let quietPeriod: TimeAmount = .seconds(1)
    private let state = NIOLockedValueBox<(generation: UInt64, entries: [String: (model: any Sendable, storedAt: NIODeadline)],
                                           invalidatedAt: NIODeadline)>((0, [:], .uptimeNanoseconds(0)))

    init(ttl: TimeAmount = .seconds(1), capacity: Int = 10_000) {
        self.ttl = ttl
        self.capacity = capacity
    }

    func find<M: FluentKit.Model & Sendable>(_ type: M.Type, _ id: M.IDValue, on db: any Database) async throws -> M?
        where M.IDValue == UUID {
        let key = "\(M.schema):\(id)"
        let oldest = NIODeadline.now() - ttl
        let (cached, generation) = state.withLockedValue { state -> (M?, UInt64) in
            guard let entry = state.entries[key], entry.storedAt > oldest else { return (nil, state.generation) }
            return (entry.model as? M, state.generation)
        }
        if let cached { return cached }
        guard let model = try await M.find(id, on: db) else { return nil }
        state.withLockedValue { state in
            guard state.generation == generation, NIODeadline.now() - state.invalidatedAt > quietPeriod else { return }
            if state.entries.count >= capacity { state.entries.removeAll(keepingCapacity: true) }
            state.entries[key] = (model, .now())
        }
        return model
    }

    func invalidateAll() {
        state.withLockedValue { state in
            state.generation &+= 1
            state.entries.removeAll(keepingCapacity: true)
            state.invalidatedAt = .now()
        }
    }
}
