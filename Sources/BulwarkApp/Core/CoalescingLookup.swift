import NIOConcurrencyHelpers

/// Lookups by key from concurrent requests, answered together: the keys asked for while the queries run go into the
/// next query, so under load one query serves many requests, and a lone lookup waits for nothing. The public tracking
/// routes find their simulation through it: on SQLite the fixed cost of a query (a hop to the database thread and
/// back, parsing the statement) was most of a click's cost.
final class CoalescingLookup<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    typealias Fetch = @Sendable (_ keys: [Key]) async throws -> [Key: Value]

    private struct State {
        var waiting: [Key: [CheckedContinuation<Value?, any Error>]] = [:]
        var running = 0
    }

    private let state = NIOLockedValueBox(State())
    private let maxKeys: Int
    private let concurrency: Int
    private let fetch: Fetch

    /// `concurrency` queries may run at once (SQLite has a connection per event loop).
    init(maxKeys: Int = 200, concurrency: Int = 2, fetch: @escaping Fetch) {
        self.maxKeys = maxKeys
        self.concurrency = concurrency
        self.fetch = fetch
    }

    /// The value `fetch` gives for `key`, or nil if it gives none; throws what `fetch` threw.
    func value(for key: Key) async throws -> Value? {
        try await withCheckedThrowingContinuation { continuation in
            let starts = state.withLockedValue { state in
                state.waiting[key, default: []].append(continuation)
                guard state.running < concurrency else { return false }
                state.running += 1
                return true
            }
            if starts { Task { await self.answerWaiting() } }
        }
    }

    private func answerWaiting() async {
        while true {
            let batch: [(Key, [CheckedContinuation<Value?, any Error>])] = state.withLockedValue { state in
                guard !state.waiting.isEmpty else {
                    state.running -= 1
                    return []
                }
                let taken = Array(state.waiting.prefix(maxKeys))
                for (key, _) in taken { state.waiting.removeValue(forKey: key) }
                return taken
            }
            guard !batch.isEmpty else { return }
            do {
                let found = try await fetch(batch.map(\.0))
                for (key, continuations) in batch { for continuation in continuations { continuation.resume(returning: found[key]) } }
            } catch {
                for (_, continuations) in batch { for continuation in continuations { continuation.resume(throwing: error) } }
            }
        }
    }
}
