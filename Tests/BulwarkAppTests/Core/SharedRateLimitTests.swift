@testable import BulwarkApp
import Foundation
import SQLKit
import NIOPosix
import Testing
import Vapor
import VaporTesting

/// Two Bulwark processes on one database share their rate-limit counters.
@Suite struct SharedRateLimitTests {
    @Test func twoInstancesShareOneCounter() async throws {
        let path = NSTemporaryDirectory() + "bulwark-shared-\(UUID().uuidString).sqlite"
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        func adjust(_ settings: inout Settings) {
            if TestDatabase.postgresURL == nil { settings.database = .sqliteFile(path) }
            settings.sharedRateLimits = true
            settings.rateLimits[.general] = RateLimitRule(limit: 3, window: 3600)
        }
        let clock = ManualClock()
        try await withBulwark(clock: clock, adjust: adjust) { first in
            let second = try await Application.make(.testing)
            second.threadPool = NIOThreadPool(numberOfThreads: 2)
            second.bcryptCost = 4
            second.clock = clock
            var settings = testSettings()
            adjust(&settings)
            try await configure(second, settings: settings)
            do {
                let tenant = try await Factory.tenant(first)
                for app in [first, second, first] {
                    #expect(try await app.send(.GET, "/api/v3/companies", token: tenant.token).status == .ok)
                }
                // Counts are reconciled every 250 ms (or at once near the limit): after a reconciliation each instance
                // knows the other's hits.
                await first.rateLimitStore.flush()
                await second.rateLimitStore.flush()
                let limited = try await second.send(.GET, "/api/v3/companies", token: tenant.token)
                expectError(limited, .tooManyRequests, "RATE_LIMITED")
            } catch {
                try? await second.asyncShutdown()
                throw error
            }
            try await second.asyncShutdown()
        }
    }

    @Test func countsAreWrittenInBatchesAndExactNearTheLimit() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let store = BatchedRateLimitStore(flushInterval: .seconds(3600))
            let rule = RateLimitRule(limit: 10, window: 3600)
            func stored() async throws -> Int {
                try await app.db.sql.raw("SELECT hits FROM rate_limit_counters WHERE bucket = 'k'").first()?
                    .decode(column: "hits", as: Int.self) ?? 0
            }
            for _ in 0..<5 { #expect(try await store.hit(key: "k", rule: rule, now: clock.now(), db: app.db).allowed) }
            #expect(try await stored() == 0, "below half the limit nothing is written per request")
            await store.flush()
            #expect(try await stored() == 5)
            // From half the limit on, each request is added at once and decided on the exact total.
            for n in 6...10 {
                #expect(try await store.hit(key: "k", rule: rule, now: clock.now(), db: app.db).allowed)
                #expect(try await stored() == n)
            }
            let refused = try await store.hit(key: "k", rule: rule, now: clock.now(), db: app.db)
            #expect(!refused.allowed)
            #expect(refused.remaining == 0)
            // Another instance's hits count too once they reach the shared row.
            try await app.db.sql.raw("DELETE FROM rate_limit_counters").run()
            clock.advance(by: 3600)
            let other = BatchedRateLimitStore(flushInterval: .seconds(3600))
            for _ in 0..<4 { _ = try await other.hit(key: "k", rule: rule, now: clock.now(), db: app.db) }
            await other.flush()
            _ = try await store.hit(key: "k", rule: rule, now: clock.now(), db: app.db)
            await store.flush()
            #expect(try await stored() == 5)
        }
    }
}
