@testable import BulwarkApp
import Fluent
import Foundation
import Testing
import Vapor
import VaporTesting

/// Serialises tests that share one PostgreSQL database; in-memory SQLite tests run in parallel.
actor SharedDatabaseGate {
    static let shared = SharedDatabaseGate()
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        if !busy { busy = true; return }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty { busy = false } else { waiters.removeFirst().resume() }
    }
}

enum TestDatabase {
    static var postgresURL: String? {
        guard let url = ProcessInfo.processInfo.environment["DATABASE_URL"], !url.isEmpty else { return nil }
        return url
    }
}

/// Settings for tests: in-memory SQLite (or DATABASE_URL), limits high enough not to interfere.
func testSettings() -> Settings {
    var settings = Settings.fromEnvironment(.testing)
    settings.database = TestDatabase.postgresURL.map { .postgres($0) } ?? .sqliteMemory
    settings.secretKey = "test-signing-secret"
    settings.masterKey = Data(repeating: 7, count: 32).base64EncodedString()
    settings.oidc = nil
    for category in RateCategory.allCases {
        settings.rateLimits[category] = RateLimitRule(limit: 100_000, window: 60)
    }
    return settings
}

/// Builds a fresh Bulwark on a clean database, runs `body`, shuts down.
func withBulwark<T>(
    clock: (any BulwarkApp.Clock)? = nil,
    adjust: (inout Settings) -> Void = { _ in },
    _ body: (Application) async throws -> T
) async throws -> T {
    let sharedDatabase = TestDatabase.postgresURL != nil
    if sharedDatabase { await SharedDatabaseGate.shared.acquire() }
    let app = try await Application.make(.testing)
    app.bcryptCost = 4
    if let clock { app.clock = clock }
    var settings = testSettings()
    adjust(&settings)
    do {
        try await configure(app, settings: settings)
        if sharedDatabase {
            // Start from empty tables, then load the built-in library again as a fresh start would.
            try await app.autoRevert()
            try await app.autoMigrate()
            try await syncBuiltinContent(app)
        }
        let result = try await body(app)
        try await app.asyncShutdown()
        if sharedDatabase { await SharedDatabaseGate.shared.release() }
        return result
    } catch {
        try? await app.asyncShutdown()
        if sharedDatabase { await SharedDatabaseGate.shared.release() }
        throw error
    }
}

/// Vapor also exports a `Client` (its HTTP client); in tests the name means the tenant.
typealias Client = BulwarkApp.Client
