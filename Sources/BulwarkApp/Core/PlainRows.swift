import FluentKit
import Foundation
import NIOConcurrencyHelpers
import SQLiteKit
import SQLKit

/// Rows of a hand-written query for work that reads a million of them (exports). On SQLite each value is taken from
/// the driver's row as it is (`SQLiteData`), without SQLKit's generic `Decoder` per value, which was a third of an
/// export's CPU; on PostgreSQL the same accessors decode through `SQLRow`. A value of an unexpected kind is an error
/// naming the column, as `SQLRow.decode` would throw.
struct PlainRow: Sendable {
    fileprivate enum Source: Sendable {
        case sqlite(SQLiteRow)
        case sql(any SQLRow)
    }

    fileprivate let source: Source

    struct WrongKind: Error, CustomStringConvertible {
        let column: String
        let expected: String
        var description: String { "Column \(column) does not hold a \(expected)." }
    }

    private func value<T: SQLiteDataConvertible & Decodable>(_ column: String, as type: T.Type) throws -> T? {
        switch source {
        case let .sqlite(row):
            guard let data = row.column(column) else { throw WrongKind(column: column, expected: "\(T.self)") }
            if case .null = data { return nil }
            guard let value = T(sqliteData: data) else { throw WrongKind(column: column, expected: "\(T.self)") }
            return value
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
        case let .sql(row):
            return try row.decodeUUID(column: column)
        }
    }
}

extension Database {
    func plainRows(_ query: SQLQueryString) async throws -> [PlainRow] {
        if let sqlite = self as? any SQLiteDatabase {
            let (text, binds) = sql.serialize(query)
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
        return try await sql.raw(query).all().map { PlainRow(source: .sql($0)) }
    }
}
