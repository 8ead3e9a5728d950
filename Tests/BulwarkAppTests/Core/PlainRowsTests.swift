@testable import BulwarkApp
import Foundation
import PostgresKit
import SQLKit
import Testing

/// `plainRows` reads values straight from the driver's row on each database; these are the values exports rely on.
@Suite struct PlainRowsTests {
    /// A row of every kind an export reads, selected by binds of every kind it sends. On PostgreSQL the binds go to
    /// PostgresNIO directly; the same query must answer the same on SQLite.
    @Test func valuesOfEveryKindAndNullsReadTheSameOnEitherDatabase() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let person = try await Factory.user(app, in: tenant, email: "plain@example.com", firstName: "Ada", lastName: "Lovelace")
            let createdAt = try #require(person.createdAt)
            let rows = try await app.db.plainRows("""
                SELECT id, client_id, first_name, department, created_at, deleted_at, failed_logins, manager_id FROM users
                WHERE id = \(bind: person.id!) AND email = \(bind: "plain@example.com") AND created_at <= \(bind: createdAt.addingTimeInterval(1))
                  AND LENGTH(first_name) = \(bind: 3)
                """)
            // On PostgreSQL these binds go to PostgresNIO as they are (the fast path); a null would not.
            #expect(PostgresBindings(plain: [person.id!, "plain@example.com", createdAt, 3]) != nil)
            #expect(PostgresBindings(plain: [person.id!, Optional<String>.none]) == nil)
            #expect(rows.count == 1)
            let row = try #require(rows.first)
            #expect(try row.uuid("id") == person.id)
            #expect(try row.optionalUUID("client_id") == tenant.client.id)
            #expect(try row.text("first_name") == "Ada")
            #expect(try row.optionalText("department") == nil)
            #expect(abs(try row.date("created_at").timeIntervalSince(createdAt)) < 0.001)
            #expect(try row.optionalDate("deleted_at") == nil)
            #expect(try row.integer("failed_logins") == 0)
            #expect(try row.optionalInteger("failed_logins") == 0)
            #expect(try row.optionalUUID("manager_id") == nil)
            #expect(throws: PlainRow.WrongKind.self) { try row.text("department") }
            #expect(throws: PlainRow.WrongKind.self) { try row.text("no_such_column") }
        }
    }

    /// A bind PostgresNIO cannot take as it is (a null) sends the query through SQLKit: same rows, same accessors.
    @Test func aNullBindStillReads() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let person = try await Factory.user(app, in: tenant, email: "optional@example.com", firstName: "Grace", lastName: "Hopper")
            let nothing: String? = nil
            let rows = try await app.db.plainRows(
                "SELECT id, first_name FROM users WHERE id = \(bind: person.id!) AND COALESCE(\(bind: nothing), first_name) = 'Grace'")
            #expect(try rows.map { try $0.uuid("id") } == [person.id!])
            #expect(try rows.first?.text("first_name") == "Grace")
        }
    }
}
