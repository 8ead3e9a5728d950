@testable import BulwarkApp
import SQLKit
import Testing

/// Settings every PostgreSQL session of the server runs with.
@Suite struct DatabaseSessionTests {
    /// JIT compiled the overdue list's plan on every request (its LIMIT hides how little it reads).
    @Test(.enabled(if: TestDatabase.postgresURL != nil, "SQLite has no JIT"))
    func postgresSessionsRunWithoutJIT() async throws {
        try await withBulwark { app in
            let row = try #require(try await app.db.sql.raw("SHOW jit").first())
            #expect(try row.decode(column: "jit", as: String.self) == "off")
        }
    }

    /// Prepared statements (their text never varies with their values) keep one generic plan: a plan made for one
    /// array's size hash-joined a scan of the whole table.
    @Test(.enabled(if: TestDatabase.postgresURL != nil, "SQLite keeps no plans"))
    func postgresSessionsKeepGenericPlans() async throws {
        try await withBulwark { app in
            let row = try #require(try await app.db.sql.raw("SHOW plan_cache_mode").first())
            #expect(try row.decode(column: "plan_cache_mode", as: String.self) == "force_generic_plan")
        }
    }
}
