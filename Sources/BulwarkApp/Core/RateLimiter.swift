import Fluent
import NIOConcurrencyHelpers
import SQLKit
import Vapor

/// The outcome of counting one request against its rule.
struct RateLimitDecision: Sendable {
    let limit: Int
    let remaining: Int
    let resetAt: Int
    let allowed: Bool

    init(rule: RateLimitRule, hits: Int, windowStart: Int) {
        limit = rule.limit
        remaining = max(0, rule.limit - hits)
        resetAt = windowStart + rule.window
        allowed = hits <= rule.limit
    }
}

/// Where fixed-window counters live.
protocol RateLimitStore: Sendable {
    func hit(key: String, rule: RateLimitRule, now: Date, db: @autoclosure () -> any Database) async throws -> RateLimitDecision
    /// Writes whatever is counted but not yet stored (at shutdown).
    func flush() async
}

extension RateLimitStore {
    func flush() async {}
}

/// Counters in the database, one write per request (kept as the exact reference; servers use
/// `BatchedRateLimitStore`).
struct DatabaseRateLimitStore: RateLimitStore {
    func hit(key: String, rule: RateLimitRule, now: Date, db: @autoclosure () -> any Database) async throws -> RateLimitDecision {
        let nowSeconds = Int(now.timeIntervalSince1970)
        let windowStart = nowSeconds - nowSeconds % rule.window
        let sql = db().sql
        // One atomic upsert per request: correct under concurrent processes on PostgreSQL and SQLite alike.
        let row = try await sql.raw("""
            INSERT INTO rate_limit_counters (bucket, window_start, hits) VALUES (\(bind: key), \(bind: windowStart), 1)
            ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limit_counters.hits + 1
            RETURNING hits
            """).first()
        let hits = try row?.decode(column: "hits", as: Int.self) ?? 1
        if hits == 1, windowStart % 64 == 0 {
            // Occasional sweep of expired windows keeps the table small.
            try await sql.raw("DELETE FROM rate_limit_counters WHERE window_start < \(bind: nowSeconds - 86_400)").run()
        }
        return RateLimitDecision(rule: rule, hits: hits, windowStart: windowStart)
    }
}

/// Counters in this process, for the embedded SQLite mode, which runs one Bulwark process per database file.
/// A write per request would serialise every API call behind SQLite's single writer. Expired windows are swept every
/// `sweepEvery` hits, and the number of counters is capped, so many distinct callers cannot grow memory without bound.
final class MemoryRateLimitStore: RateLimitStore, Sendable {
    static let maxCounters = 200_000
    static let sweepEvery = 10_000
    private let state = NIOLockedValueBox<(counters: [String: (windowEnd: Int, hits: Int)], hitsSinceSweep: Int)>(([:], 0))

    func hit(key: String, rule: RateLimitRule, now: Date, db: @autoclosure () -> any Database) async throws -> RateLimitDecision {
        let nowSeconds = Int(now.timeIntervalSince1970)
        let windowStart = nowSeconds - nowSeconds % rule.window
        let windowEnd = windowStart + rule.window
        let hits = state.withLockedValue { state -> Int in
            state.hitsSinceSweep += 1
            if state.hitsSinceSweep >= Self.sweepEvery || state.counters.count >= Self.maxCounters {
                state.hitsSinceSweep = 0
                state.counters = state.counters.filter { $0.value.windowEnd > nowSeconds }
                if state.counters.count >= Self.maxCounters {
                    // Still full of live windows: forget the ones closest to expiry first.
                    let keep = state.counters.sorted { $0.value.windowEnd > $1.value.windowEnd }.prefix(Self.maxCounters / 2)
                    state.counters = Dictionary(uniqueKeysWithValues: keep.map { ($0.key, $0.value) })
                }
            }
            let current = state.counters[key].flatMap { $0.windowEnd == windowEnd ? $0.hits : nil } ?? 0
            state.counters[key] = (windowEnd, current + 1)
            return current + 1
        }
        return RateLimitDecision(rule: rule, hits: hits, windowStart: windowStart)
    }
}

extension Application {
    private struct RateLimitStoreKey: StorageKey { typealias Value = any RateLimitStore }

    var rateLimitStore: any RateLimitStore {
        get { storage[RateLimitStoreKey.self] ?? DatabaseRateLimitStore() }
        set { storage[RateLimitStoreKey.self] = newValue }
    }
}

struct CreateRateLimitCounters: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema("rate_limit_counters")
            .field("bucket", .string, .required)
            .field("window_start", .int64, .required)
            .field("hits", .int64, .required)
            .unique(on: "bucket", "window_start")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("rate_limit_counters").delete()
    }
}
