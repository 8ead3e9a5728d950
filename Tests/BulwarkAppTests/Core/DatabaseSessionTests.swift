@testable import BulwarkApp
import FluentKit
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

    /// The batch writers ask for generic plans for their own transaction only: other statements keep PostgreSQL's choice.
    @Test(.enabled(if: TestDatabase.postgresURL != nil, "SQLite keeps no plans"))
    func genericPlansLastForTheirTransaction() async throws {
        try await withBulwark { app in
            @Sendable func mode(_ db: any Database) async throws -> String {
                try #require(try await db.sql.raw("SHOW plan_cache_mode").first()).decode(column: "plan_cache_mode", as: String.self)
            }
            let inside = try await app.db.transaction { db in
                try await db.useGenericPlans()
                return try await mode(db)
            }
            #expect(inside == "force_generic_plan")
            #expect(try await mode(app.db) == "auto")
        }
    }
}
