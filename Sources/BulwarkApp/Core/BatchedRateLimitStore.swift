import Fluent
import NIOConcurrencyHelpers
import SQLKit
import Vapor

/// Rate-limit counters shared through the database without a write per request. Each process counts locally and adds
/// its counts to the shared rows in one statement every `flushInterval` (250 ms), learning the shared totals back. While
/// a caller is below half its limit, requests are decided on the last known total plus this process's own count; from
/// half the limit on, each request adds itself to the shared row at once and is decided on the exact total.
///
/// Overshoot: a process does not see other processes' requests of the last flush interval. Below half the limit that
/// cannot matter; above it, each other process's unseen requests are at most what it decided locally since its last
/// flush, so a window may admit at most `limit + (processes - 1) × limit / 2` in the worst case (all processes
/// bursting in the same 250 ms just below half the limit), and exactly `limit` with one process.
final class BatchedRateLimitStore: RateLimitStore, Sendable {
    struct Counter: Sendable {
        var windowStart: Int
        var windowEnd: Int
        /// The shared total as last read from the database.
        var shared: Int
        /// This process's hits not yet added to the shared row.
        var pending: Int
    }

    static let maxCounters = 200_000
    let flushInterval: Duration
    private let state = NIOLockedValueBox<(counters: [String: Counter], flusher: Task<Void, Never>?)>(([:], nil))
    private let database = NIOLockedValueBox<(any Database)?>(nil)

    init(flushInterval: Duration = .milliseconds(250)) {
        self.flushInterval = flushInterval
    }

    func hit(key: String, rule: RateLimitRule, now: Date, db: @autoclosure () -> any Database) async throws -> RateLimitDecision {
        let nowSeconds = Int(now.timeIntervalSince1970)
        let windowStart = nowSeconds - nowSeconds % rule.window
        let estimate = state.withLockedValue { state -> Int in
            if state.counters.count >= Self.maxCounters {
                // Full: first the windows that are over and written; if still full, everything written (those
                // callers are then decided on their own count until the next reconciliation tells them the total).
                state.counters = state.counters.filter { $0.value.pending > 0 || $0.value.windowEnd > nowSeconds }
                if state.counters.count >= Self.maxCounters / 2 {
                    state.counters = state.counters.filter { $0.value.pending > 0 }
                }
                // Still full (the database has been away a while): the unwritten counts are given up.
                if state.counters.count >= Self.maxCounters / 2 { state.counters.removeAll(keepingCapacity: true) }
            }
            var counter = state.counters[key] ?? Counter(windowStart: windowStart, windowEnd: windowStart + rule.window, shared: 0, pending: 0)
            if counter.windowStart != windowStart { counter = Counter(windowStart: windowStart, windowEnd: windowStart + rule.window, shared: 0, pending: 0) }
            counter.pending += 1
            state.counters[key] = counter
            return counter.shared + counter.pending
        }
        if estimate * 2 <= rule.limit {
            scheduleFlush(db)
            return RateLimitDecision(rule: rule, hits: estimate, windowStart: windowStart)
        }
        // Near the limit: this request and any pending ones go to the shared row now.
        let pending = state.withLockedValue { state -> Int in
            guard var counter = state.counters[key], counter.windowStart == windowStart else { return 0 }
            let pending = counter.pending
            counter.pending = 0
            state.counters[key] = counter
            return pending
        }
        let totals = try await add([(key, windowStart, max(pending, 1))], on: db())
        let shared = totals[key] ?? estimate
        state.withLockedValue { state in
            if var counter = state.counters[key], counter.windowStart == windowStart {
                counter.shared = max(counter.shared, shared)
                state.counters[key] = counter
            }
        }
        return RateLimitDecision(rule: rule, hits: shared, windowStart: windowStart)
    }

    /// Adds every pending count to the shared rows now (also called at shutdown, before the databases close).
    func flush() async {
        guard let db = database.withLockedValue({ $0 }) else { return }
        let batch = state.withLockedValue { state -> [(String, Int, Int)] in
            var batch: [(String, Int, Int)] = []
            for (key, counter) in state.counters where counter.pending > 0 {
                batch.append((key, counter.windowStart, counter.pending))
                state.counters[key]?.pending = 0
            }
            return batch
        }
        guard !batch.isEmpty else { return }
        do {
            var totals: [String: Int] = [:]
            for start in stride(from: 0, to: batch.count, by: 500) {
                totals.merge(try await add(Array(batch[start..<min(start + 500, batch.count)]), on: db)) { $1 }
            }
            state.withLockedValue { state in
                for (key, windowStart, _) in batch {
                    if var counter = state.counters[key], counter.windowStart == windowStart, let shared = totals[key] {
                        counter.shared = max(counter.shared, shared)
                        state.counters[key] = counter
                    }
                }
            }
        } catch {
            // Not lost: the counts go back to pending and the next flush tries again.
            state.withLockedValue { state in
                for (key, windowStart, hits) in batch where state.counters[key]?.windowStart == windowStart {
                    state.counters[key]?.pending += hits
                }
            }
        }
    }

    private func scheduleFlush(_ db: () -> any Database) {
        database.withLockedValue { if $0 == nil { $0 = db() } }
        state.withLockedValue { state in
            guard state.flusher == nil else { return }
            let interval = flushInterval
            state.flusher = Task { [weak self] in
                try? await Task.sleep(for: interval)
                guard let self else { return }
                self.state.withLockedValue { $0.flusher = nil }
                await self.flush()
            }
        }
    }

    /// Adds the counts in one statement and returns the shared totals.
    private func add(_ counts: [(key: String, windowStart: Int, hits: Int)], on db: any Database) async throws -> [String: Int] {
        let values = SQLList(counts.map { count in
            SQLGroupExpression([SQLBind(count.key), SQLBind(count.windowStart), SQLBind(count.hits)] as [any SQLExpression])
        })
        let rows = try await db.sql.raw("""
            INSERT INTO rate_limit_counters (bucket, window_start, hits) VALUES \(values)
            ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limit_counters.hits + excluded.hits
            RETURNING bucket, hits
            """).all()
        var totals: [String: Int] = [:]
        for row in rows { totals[try row.decode(column: "bucket", as: String.self)] = try row.decode(column: "hits", as: Int.self) }
        if counts.contains(where: { $0.windowStart % 64 == 0 }) {
            // Occasional sweep of expired windows keeps the table small.
            try await db.sql.raw("DELETE FROM rate_limit_counters WHERE window_start < \(bind: Int(Date().timeIntervalSince1970) - 86_400)").run()
        }
        return totals
    }
}
