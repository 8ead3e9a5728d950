import FluentKit
import Foundation
import NIOConcurrencyHelpers
import PostgresKit
import SQLiteKit
import SQLKit

/// Rows of a hand-written query for work that reads a million of them (exports). Each value is taken from the driver's
/// own row (`SQLiteData`, or a PostgreSQL cell decoded by its static type), without SQLKit's generic `Decoder` per
/// value: that was a third of an export's CPU on SQLite, and half of it on PostgreSQL, where every value went through a
/// dynamic cast and every id through its text form. A value of an unexpected kind is an error naming the column, as
/// `SQLRow.decode` would throw.
struct PlainRow: Sendable {
    fileprivate enum Source: Sendable {
        case sqlite(SQLiteRow)
        case postgres(PostgresRandomAccessRow, PostgresColumns)
        case sql(any SQLRow)
    }

    fileprivate let source: Source

    struct WrongKind: Error, CustomStringConvertible {
        let column: String
        let expected: String
        var description: String { "Column \(column) does not hold a \(expected)." }
    }

    private func value<T: SQLiteDataConvertible & PostgresDecodable & Decodable>(_ column: String, as type: T.Type) throws -> T? {
        switch source {
        case let .sqlite(row):
            guard let data = row.column(column) else { throw WrongKind(column: column, expected: "\(T.self)") }
            if case .null = data { return nil }
            guard let value = T(sqliteData: data) else { throw WrongKind(column: column, expected: "\(T.self)") }
            return value
        case let .postgres(row, columns):
            guard let index = columns.position[column] else { throw WrongKind(column: column, expected: "\(T.self)") }
            let cell = row[index]
            return cell.bytes == nil ? nil : try cell.decode(T.self)
        case let .sql(row):
            return try row.decode(column: column, as: T?.self)
        }
    }

    private func required<T>(_ value: T?, _ column: String) throws -> T {
        guard let value else { throw WrongKind(column: column, expected: "\(T.self) (it is null)") }
        return value
    }

    func text(_ column: String) throws -> String { try required(value(column, as: String.self), column) }
    func optionalText(_ column: String) throws -> String? { try value(column, as: String.self) }
    func integer(_ column: String) throws -> Int { try required(value(column, as: Int.self), column) }
    func optionalInteger(_ column: String) throws -> Int? { try value(column, as: Int.self) }
    func date(_ column: String) throws -> Date { try required(value(column, as: Date.self), column) }
    func optionalDate(_ column: String) throws -> Date? { try value(column, as: Date.self) }

    /// SQLite keeps ids as text (parsed by `UUID(hexText:)`); PostgreSQL as `uuid`.
    func optionalUUID(_ column: String) throws -> UUID? {
        switch source {
        case let .sqlite(row):
            guard let value = row.column(column) else { throw WrongKind(column: column, expected: "UUID") }
            if value.isNull { return nil }
        case let .postgres(row, columns):
            guard let index = columns.position[column] else { throw WrongKind(column: column, expected: "UUID") }
            if row[index].bytes == nil { return nil }
        case let .sql(row):
            if try row.decodeNil(column: column) { return nil }
        }
        return try uuid(column)
    }

    func uuid(_ column: String) throws -> UUID {
        switch source {
        case let .sqlite(row):
            guard case let .text(text)? = row.column(column), let id = UUID(hexText: text) else {
                throw WrongKind(column: column, expected: "UUID")
            }
            return id
        case let .postgres(row, columns):
            guard let index = columns.position[column] else { throw WrongKind(column: column, expected: "UUID") }
            return try row[index].decode(UUID.self)
        case let .sql(row):
            return try row.decodeUUID(column: column)
        }
    }
}

extension Database {
    func plainRows(_ query: SQLQueryString) async throws -> [PlainRow] {
        let (text, binds) = sql.serialize(query)
        if let sqlite = self as? any SQLiteDatabase {
            let encoder = SQLiteDataEncoder()
            let values = try binds.map { try encoder.encode($0) }
            // Rows gathered on the database thread: the driver's usual path hands each row to the event loop on its
            // own (a task and a wake-up per row, the largest cost of an export once decoding was gone).
            let rows = try await sqlite.withConnection { connection in
                let gathered = NIOLockedValueBox<[SQLiteRow]>([])
                try await connection.query(text, values) { row in gathered.withLockedValue { $0.append(row) } }
                return gathered.withLockedValue { $0 }
            }
            return rows.map { PlainRow(source: .sqlite($0)) }
        }
        if let postgres = self as? any PostgresDatabase, let bindings = PostgresBindings(plain: binds) {
            postgres.logger.debug("Executing query", metadata: ["sql": .string(text)])
            let result = try await postgres.withConnection { connection in
                connection.query(PostgresQuery(unsafeSQL: text, binds: bindings), logger: connection.logger)
            }.get()
            guard let first = result.rows.first else { return [] }
            let columns = PostgresColumns(first)
            return result.rows.map { PlainRow(source: .postgres($0.makeRandomAccess(), columns)) }
        }
        return try await sql.raw(query).all().map { PlainRow(source: .sql($0)) }
    }
}

/// Each column's position, looked up once per result rather than once per value (the driver's own lookup by name
/// hashes the name twice per value: whether it is there, then where). A name selected twice is the first column of
/// that name, as on SQLite; queries read this way name each column once.
final class PostgresColumns: Sendable {
    let position: [String: Int]

    init(_ row: PostgresRow) {
        var position: [String: Int] = [:]
        for (index, cell) in row.enumerated() where position[cell.columnName] == nil { position[cell.columnName] = index }
        self.position = position
    }
}

extension PostgresBindings {
    /// The binds of a serialised query, when every one is a value PostgresNIO encodes itself (ids, text, numbers,
    /// dates): nil otherwise, and the query goes through SQLKit, which encodes anything `Encodable`.
    init?(plain binds: [any Encodable & Sendable]) {
        self.init(capacity: binds.count)
        for bind in binds {
            guard let value = bind as? any PostgresDynamicTypeEncodable else { return nil }
            append(value)
        }
    }
}
