import NIOConcurrencyHelpers

/// Lookups by key from concurrent requests, answered together: the keys asked for while the queries run go into the
/// next query, so under load one query serves many requests, and a lone lookup waits for nothing. The public tracking
/// routes find their simulation through it: on SQLite the fixed cost of a query (a hop to the database thread and
/// back, parsing the statement) was most of a click's cost.
final class CoalescingLookup<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    typealias Fetch = @Sendable (_ keys: [Key]) async throws -> [Key: Value]

    private struct State {
        var waiting: [Key: [CheckedContinuation<Value?, any Error>]] = [:]
        /// Keys in the order they were first asked for: the oldest go into the next query.
        var order: [Key] = []
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
                if state.waiting[key] == nil { state.order.append(key) }
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
                let keys = state.order.prefix(maxKeys)
                state.order.removeFirst(keys.count)
                return keys.map { ($0, state.waiting.removeValue(forKey: $0) ?? []) }
            }
            guard !batch.isEmpty else { return }
            do {
                answer(batch, with: try await fetch(batch.map(\.0)))
            } catch where batch.count > 1 && !DatabaseAvailability.isUnavailable(error) {
                // One key the database cannot take must not fail the lookups that shared its query.
                for entry in batch {
                    do { answer([entry], with: try await fetch([entry.0])) } catch { fail([entry], with: error) }
                }
            } catch {
                fail(batch, with: error)
            }
        }
    }

    private func answer(_ batch: [(Key, [CheckedContinuation<Value?, any Error>])], with found: [Key: Value]) {
        for (key, continuations) in batch { for continuation in continuations { continuation.resume(returning: found[key]) } }
    }

    private func fail(_ batch: [(Key, [CheckedContinuation<Value?, any Error>])], with error: any Error) {
        for (_, continuations) in batch { for continuation in continuations { continuation.resume(throwing: error) } }
    }
}
