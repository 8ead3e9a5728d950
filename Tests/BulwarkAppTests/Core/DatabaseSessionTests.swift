@testable import BulwarkApp
import FluentKit
import NIOConcurrencyHelpers
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

    /// A prepared statement that fails inside a transaction (here a trigger's error) fails the transaction and leaves
    /// its connection to the pool: closing it there hung the rollback, and the request with it.
    @Test(.enabled(if: TestDatabase.postgresURL != nil, "SQLite prepares nothing across statements"))
    func aPreparedStatementFailingInATransactionAnswersTheError() async throws {
        try await withBulwark { app in
            let setup = [
                "DROP TABLE IF EXISTS refusing_inserts",
                "CREATE TABLE refusing_inserts (id integer)",
                "CREATE OR REPLACE FUNCTION refuse_inserts() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql",
                "CREATE TRIGGER refuse_inserts BEFORE INSERT ON refusing_inserts FOR EACH ROW EXECUTE FUNCTION refuse_inserts()",
            ]
            for statement in setup { try await app.db.sql.raw("\(unsafeRaw: statement)").run() }
            // Raced against a deadline by polling, not in a task group: a group would wait for a hung child.
            let outcome = NIOLockedValueBox("hung")
            let database = app.db
            Task {
                do {
                    try await database.transaction { db in
                        try await db.plainRun("INSERT INTO refusing_inserts (id) VALUES (\(bind: 1))", prepared: true)
                    }
                    outcome.withLockedValue { $0 = "no error" }
                } catch {
                    outcome.withLockedValue { $0 = "refused" }
                }
            }
            for _ in 0..<200 where outcome.withLockedValue({ $0 }) == "hung" { try await Task.sleep(for: .milliseconds(100)) }
            let answer = outcome.withLockedValue { $0 }
            try #require(answer != "hung", "the failed transaction never ended")
            #expect(answer == "refused")
            #expect(try await app.db.sql.raw("SELECT 1 AS one").first()?.decode(column: "one", as: Int.self) == 1)
            try await app.db.sql.raw("DROP TABLE refusing_inserts").run()
            try await app.db.sql.raw("DROP FUNCTION refuse_inserts()").run()
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
