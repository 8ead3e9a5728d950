@testable import BulwarkApp
import Foundation
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
                let limited = try await second.send(.GET, "/api/v3/companies", token: tenant.token)
                expectError(limited, .tooManyRequests, "RATE_LIMITED")
            } catch {
                try? await second.asyncShutdown()
                throw error
            }
            try await second.asyncShutdown()
        }
    }
}
