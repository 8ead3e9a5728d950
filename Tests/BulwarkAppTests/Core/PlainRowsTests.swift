@testable import BulwarkApp
import Foundation
import PostgresKit
import SQLKit
import Testing

/// `plainRows` reads values straight from the driver's row on each database, by position; these are the values exports rely on.
@Suite struct PlainRowsTests {
    /// A row of every kind an export reads, selected by binds of every kind it sends. On PostgreSQL the binds go to
    /// PostgresNIO directly; the same query must answer the same on SQLite.
    @Test func valuesOfEveryKindAndNullsReadTheSameOnEitherDatabase() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let person = try await Factory.user(app, in: tenant, email: "plain@example.com", firstName: "Ada", lastName: "Lovelace")
            let createdAt = try #require(person.createdAt)
            let rows = try await app.db.plainRows("""
                SELECT id, client_id, first_name, department, created_at, deleted_at, failed_logins, failed_logins AS again, manager_id
                FROM users
                WHERE id = \(bind: person.id!) AND email = \(bind: "plain@example.com") AND created_at <= \(bind: createdAt.addingTimeInterval(1))
                  AND LENGTH(first_name) = \(bind: 3)
                """) { row in
                try (row.next(UUID.self), row.next(UUID?.self), row.next(String.self), row.next(String?.self), row.next(Date.self),
                     row.next(Date?.self), row.next(Int.self), row.next(Int?.self), row.next(UUID?.self))
            }
            // On PostgreSQL these binds go to PostgresNIO as they are (the fast path); a null would not.
            #expect(PostgresBindings(plain: [person.id!, "plain@example.com", createdAt, 3]) != nil)
            #expect(PostgresBindings(plain: [person.id!, Optional<String>.none]) == nil)
            #expect(rows.count == 1)
            let (id, clientID, firstName, department, created, deletedAt, failedLogins, again, managerID) = try #require(rows.first)
            #expect(id == person.id)
            #expect(clientID == tenant.client.id)
            #expect(firstName == "Ada")
            #expect(department == nil)
            #expect(abs(created.timeIntervalSince(createdAt)) < 0.001)
            #expect(deletedAt == nil)
            #expect(failedLogins == 0)
            #expect(again == 0)
            #expect(managerID == nil)
            // A null where a value is required, a kind the column does not hold, or another number of columns than
            // the query selects: an error, never a wrong value.
            let select = "SELECT id, department, first_name FROM users WHERE id = \(bind: person.id!)" as SQLQueryString
            await #expect(throws: (any Error).self) { _ = try await app.db.plainRows(select) { try ($0.next(UUID.self), $0.next(String.self), $0.next(String.self)) } }
            await #expect(throws: (any Error).self) { _ = try await app.db.plainRows(select) { try ($0.next(UUID.self), $0.next(String?.self), $0.next(Date.self)) } }
            await #expect(throws: (any Error).self) { _ = try await app.db.plainRows(select) { try ($0.next(UUID.self), $0.next(String?.self), $0.next(UUID?.self)) } }
            await #expect(throws: PlainRowMismatch.self) {
                _ = try await app.db.plainRows(select) { try ($0.next(UUID.self), $0.next(String?.self), $0.next(String.self), $0.next(String?.self)) }
            }
            await #expect(throws: PlainRowMismatch.self) { _ = try await app.db.plainRows(select) { try ($0.next(UUID.self), $0.next(String?.self)) } }
            let fine = try await app.db.plainRows(select) { try ($0.next(UUID.self), $0.next(String?.self), $0.next(String.self)) }
            #expect(fine.count == 1 && fine[0].0 == person.id && fine[0].1 == nil && fine[0].2 == "Ada")
        }
    }

    /// A bind PostgresNIO cannot take as it is (a null) sends the query through SQLKit: same rows, same accessors.
    @Test func aNullBindStillReads() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let person = try await Factory.user(app, in: tenant, email: "optional@example.com", firstName: "Grace", lastName: "Hopper")
            let nothing: String? = nil
            let rows = try await app.db.plainRows(
                "SELECT id, first_name FROM users WHERE id = \(bind: person.id!) AND COALESCE(\(bind: nothing), first_name) = 'Grace'"
            ) { try ($0.next(UUID.self), $0.next(String.self)) }
            #expect(rows.map(\.0) == [person.id!])
            #expect(rows.first?.1 == "Grace")
            await #expect(throws: (any Error).self) {
                _ = try await app.db.plainRows(
                    "SELECT id FROM users WHERE id = \(bind: person.id!) AND COALESCE(\(bind: nothing), first_name) = 'Grace'"
                ) { try ($0.next(UUID.self), $0.next(String.self)) }
            }
            // Read by name on this path, a name selected twice is refused (it would read the first column twice); by
            // position (SQLite, PostgreSQL's direct path) both columns are read as they are.
            let twice: SQLQueryString = """
                SELECT u.id, o.id FROM users u JOIN users o ON o.id = u.id
                WHERE u.id = \(bind: person.id!) AND COALESCE(\(bind: nothing), u.first_name) = 'Grace'
                """
            if app.db.sql.dialect.name == "sqlite" {
                #expect(try await app.db.plainRows(twice) { try ($0.next(UUID.self), $0.next(UUID.self)) }.count == 1)
            } else {
                await #expect(throws: PlainRowMismatch.self) { _ = try await app.db.plainRows(twice) { try ($0.next(UUID.self), $0.next(UUID.self)) } }
            }
        }
    }

    /// A prepared statement is named after its text: two texts never share one, the same text answers for new values,
    /// and a list bound as one array keeps the text the same whatever its length.
    @Test func preparedStatementsAnswerForTheirOwnTextAndValues() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let ada = try await Factory.user(app, in: tenant, email: "ada@example.com", firstName: "Ada", lastName: "Lovelace")
            let grace = try await Factory.user(app, in: tenant, email: "grace@example.com", firstName: "Grace", lastName: "Hopper")
            let sqlite = app.db.sql.dialect.name == "sqlite"
            func names(_ ids: [UUID]) async throws -> [String] {
                let among: SQLQueryString = sqlite ? "id IN (\(binds: ids))" : "id = ANY(\(bind: ids))"
                return try await app.db.plainRows("SELECT first_name FROM users WHERE \(among) ORDER BY first_name", prepared: true) {
                    try $0.next(String.self)
                }
            }
            func email(_ id: UUID) async throws -> [String] {
                try await app.db.plainRows("SELECT email FROM users WHERE id = \(bind: id)", prepared: true) { try $0.next(String.self) }
            }
            for _ in 0..<3 {
                #expect(try await names([ada.id!]) == ["Ada"])
                #expect(try await email(grace.id!) == ["grace@example.com"])
                #expect(try await names([ada.id!, grace.id!]) == ["Ada", "Grace"])
                #expect(try await email(ada.id!) == ["ada@example.com"])
                #expect(try await names([UUID()]) == [])
            }
            // Many at once, on several connections: each gets its own answer.
            let answers = try await withThrowingTaskGroup(of: (String, [String]).self) { group in
                for index in 0..<16 {
                    let person = index.isMultiple(of: 2) ? ada : grace
                    group.addTask { (person.email, try await email(person.id!)) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(answers.count == 16)
            for (expected, answer) in answers { #expect(answer == [expected]) }
        }
    }

    /// PostgresNIO keeps a failed prepare for the connection's life: after a column changes type under a prepared
    /// statement ("cached plan must not change result type"), the query still answers (unprepared, on a fresh connection).
    @Test func aStatementWhoseTableChangedStillAnswers() async throws {
        try await withBulwark { app in
            guard app.db.sql.dialect.name != "sqlite" else { return }
            let table = "plain_probe_\(UInt32.random(in: 0...UInt32.max))"
            try await app.db.sql.raw("CREATE TABLE \(unsafeRaw: table) (v int4)").run()
            try await app.db.sql.raw("INSERT INTO \(unsafeRaw: table) VALUES (7)").run()
            let select: SQLQueryString = "SELECT v FROM \(unsafeRaw: table) WHERE v IS NOT NULL OR \(bind: 1) = 1"
            for _ in 0..<20 { #expect(try await app.db.plainRows(select, prepared: true) { try $0.next(Int.self) } == [7]) }
            try await app.db.sql.raw("ALTER TABLE \(unsafeRaw: table) ALTER COLUMN v TYPE text").run()
            for _ in 0..<20 { #expect(try await app.db.plainRows(select, prepared: true) { try $0.next(String.self) } == ["7"]) }
            try await app.db.sql.raw("DROP TABLE \(unsafeRaw: table)").run()
        }
    }
}

/// `BoundRows` gives a batch to a statement as a table: arrays through `unnest` on PostgreSQL, JSON through `json_each`
/// on SQLite.
@Suite struct BoundRowsTests {
    /// Every kind of column, nulls among text, and text that is empty, quoted or beyond ASCII, read back in order.
    @Test func rowsOfEveryKindReadBackAsGiven() async throws {
        try await withBulwark { app in
            let ids = [UUID(), UUID(), UUID()]
            let times = [Date(timeIntervalSince1970: 1_700_000_000.25), Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 2_000_000_000)]
            let texts = ["plain", "", "it's \"quoted\" — ünïcode 🎣"]
            // Everything JSON escapes, a quote a combining mark joins into one Character, and a CR LF pair.
            let optional: [String?] = [nil, "", "back\\slash\ttab\r\nline\u{01}\u{1F}\"\u{301} end"]
            var rows = BoundRows(count: 3, on: app.db)
            rows.add(ids)
            rows.add(texts)
            rows.add(optional)
            rows.add(times)
            rows.add([0, -7, Int.max])
            rows.add([true, false, true])
            let read = try await app.db.plainRows("""
                WITH v(id, label, maybe, at, n, flag) AS (\(rows.table))
                SELECT id, label, maybe, at, n, flag FROM v ORDER BY n
                """, prepared: true) { row in
                try (row.next(UUID.self), row.next(String.self), row.next(String?.self), row.next(Date.self), row.next(Int.self), row.next(Bool.self))
            }
            #expect(read.map(\.0) == [ids[1], ids[0], ids[2]])
            #expect(read.map(\.1) == [texts[1], texts[0], texts[2]])
            #expect(read.map(\.2) == [optional[1], optional[0], optional[2]])
            #expect(zip(read.map(\.3), [times[1], times[0], times[2]]).allSatisfy { abs($0.timeIntervalSince($1)) < 0.001 })
            #expect(read.map(\.4) == [-7, 0, Int.max])
            #expect(read.map(\.5) == [false, true, true])
        }
    }

    /// The statement's text does not depend on the number of rows (so PostgreSQL prepares it once, and SQLite parses
    /// a short statement, not one bind per value).
    @Test func theTextIsTheSameForAnyBatch() async throws {
        try await withBulwark { app in
            func text(_ count: Int) -> String {
                var rows = BoundRows(count: count, on: app.db)
                rows.add((0..<count).map { _ in UUID() })
                rows.add((0..<count).map { String($0) } as [String?])
                return app.db.sql.serialize(rows.table).sql
            }
            #expect(text(1) == text(2_000))
            if app.db.sql.dialect.name == "postgresql" {
                #expect(text(1) == "SELECT * FROM unnest($1, $2)")
            } else {
                #expect(text(1) == "SELECT value->>0, value->>1 FROM json_each(?1)")
            }
        }
    }
}
