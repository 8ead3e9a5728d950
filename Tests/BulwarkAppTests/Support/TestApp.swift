@testable import BulwarkApp
import Fluent
import SQLKit
import Foundation
import NIOPosix
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

    /// Tables that keep their rows between tests: Fluent's record of migrations and the built-in library (loaded
    /// once; its customer-made rows are deleted like everything else).
    static let kept: Set<String> = ["_fluent_migrations", "content_versions"]
    static let library: Set<String> = ["training_modules", "phishing_templates"]

    /// Empties every table, children before parents. DELETE is far cheaper than TRUNCATE on the few rows a test leaves.
    static func emptyAllTables(_ db: any Database) async throws {
        let tables = Set(try await db.sql.raw("""
            SELECT tablename FROM pg_tables WHERE schemaname = current_schema()
            """).all().map { try $0.decode(column: "tablename", as: String.self) }).subtracting(kept)
        let links = try await db.sql.raw("""
            SELECT conrelid::regclass::text AS child, confrelid::regclass::text AS parent FROM pg_constraint
            WHERE contype = 'f' AND connamespace = current_schema()::regnamespace
            """).all().map { (try $0.decode(column: "child", as: String.self), try $0.decode(column: "parent", as: String.self)) }
        var remaining = tables
        var order: [String] = []
        while !remaining.isEmpty {
            // A table goes once no remaining table refers to it.
            let free = remaining.filter { table in !links.contains { $0.1 == table && $0.0 != table && remaining.contains($0.0) } }
            let batch = free.isEmpty ? remaining : free
            order += batch.sorted()
            remaining.subtract(batch)
        }
        let ordered = order
        try await db.transaction { db in
            for table in ordered {
                let condition = library.contains(table) ? " WHERE builtin_key IS NULL" : ""
                try await db.sql.raw("DELETE FROM \(ident: table)\(unsafeRaw: condition)").run()
            }
        }
    }
}

/// Settings for tests: in-memory SQLite (or DATABASE_URL), limits high enough not to interfere.
func testSettings() -> Settings {
    var settings = try! Settings.fromEnvironment(.testing)
    settings.database = TestDatabase.postgresURL.map { .postgres($0) } ?? .sqliteMemory
    settings.secretKey = "test-signing-secret"
    settings.masterKey = Data(repeating: 7, count: 32).base64EncodedString()
    settings.oidc = nil
    // Hundreds of tests share two cores: a request may wait longer for a connection than it ever would in production.
    settings.databasePoolTimeout = 60
    for category in RateCategory.allCases {
        settings.rateLimits[category] = RateLimitRule(limit: 100_000, window: 60)
    }
    // The SMTP and HTTP fixtures listen on loopback, as a local relay would; tests of the guard itself use denyAll.
    settings.outbound = try! OutboundPolicy(allowList: "127.0.0.1, ::1")
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
    // Each app gets its own blocking pool (SQLite and bcrypt run there): with the process-wide one, a few hundred
    // parallel tests would wait on two shared threads and time out.
    app.threadPool = NIOThreadPool(numberOfThreads: 4)
    app.bcryptCost = 4
    if let clock { app.clock = clock }
    var settings = testSettings()
    adjust(&settings)
    do {
        try await configure(app, settings: settings)
        if sharedDatabase {
            // The schema is migrated and the built-in library loaded by `configure` (once per database, not per
            // test): empty every other table. Reverting and migrating again took seconds per test.
            try await TestDatabase.emptyAllTables(app.db)
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

extension JobContext {
    /// A job context for driving handlers by hand; `stop` plays a shutdown request.
    static func test(_ app: Application, worker: String = "test-worker", stop: @escaping @Sendable () -> Bool = { false }) -> JobContext {
        JobContext(app: app, worker: worker, lease: app.settings.jobLease, shouldStop: stop)
    }
}
