import Fluent
import SQLKit
import Vapor

/// Fixed-window counters kept in the database so every Bulwark process shares them.
struct RateLimiter: Sendable {
    struct Decision: Sendable {
        let limit: Int
        let remaining: Int
        let resetAt: Int
        let allowed: Bool
    }

    let db: any Database

    func hit(key: String, rule: RateLimitRule, now: Date) async throws -> Decision {
        let nowSeconds = Int(now.timeIntervalSince1970)
        let windowStart = nowSeconds - nowSeconds % rule.window
        let sql = db as! any SQLDatabase
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
        return Decision(
            limit: rule.limit,
            remaining: max(0, rule.limit - hits),
            resetAt: windowStart + rule.window,
            allowed: hits <= rule.limit
        )
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
