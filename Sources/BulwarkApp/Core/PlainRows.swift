import Crypto
import FluentKit
import Foundation
import NIOConcurrencyHelpers
import PostgresKit
import SQLiteKit
import SQLKit

/// A value a column of a plain row holds: ids, text, numbers, flags, times, and each of them optional.
protocol PlainColumn: PostgresDecodable, Decodable, Sendable {
    /// The value from SQLite's own representation of it; nil when the column holds another kind.
    static func fromSQLite(_ data: SQLiteData) -> Self?
}

extension String: PlainColumn {
    static func fromSQLite(_ data: SQLiteData) -> String? { String(sqliteData: data) }
}

extension Int: PlainColumn {
    static func fromSQLite(_ data: SQLiteData) -> Int? { Int(sqliteData: data) }
}

extension Bool: PlainColumn {
    static func fromSQLite(_ data: SQLiteData) -> Bool? { Bool(sqliteData: data) }
}

extension Date: PlainColumn {
    static func fromSQLite(_ data: SQLiteData) -> Date? { Date(sqliteData: data) }
}

extension UUID: PlainColumn {
    /// SQLite keeps ids as text, parsed without `sscanf` (`UUID(hexText:)`).
    static func fromSQLite(_ data: SQLiteData) -> UUID? {
        guard case let .text(text) = data else { return nil }
        return UUID(hexText: text)
    }
}

extension Optional: PlainColumn where Wrapped: PlainColumn, Wrapped._DecodableType == Wrapped {
    static func fromSQLite(_ data: SQLiteData) -> Wrapped?? {
        if case .null = data { return .some(nil) }
        return Wrapped.fromSQLite(data).map { .some($0) }
    }
}

/// What went wrong reading a plain row: the query and the reading of it disagree.
struct PlainRowMismatch: Error, CustomStringConvertible {
    let description: String

    static func kind(column: String, expected: Any.Type) -> PlainRowMismatch {
        PlainRowMismatch(description: "Column \(column) does not hold a \(expected).")
    }

    static func count(selected: Int, read: Int) -> PlainRowMismatch {
        PlainRowMismatch(description: "The query selects \(selected) columns; \(read) were read.")
    }
}

/// One row of a plain query, read column by column in the order the query selects them (`next()`), straight from the
/// driver's own row: PostgreSQL's binary cells by their static type, SQLite's own values. No lookup by name and no
/// generic `Decoder` per value: those were half of an export's CPU on PostgreSQL.
struct PlainRow {
    private var postgres: PostgresRow.Iterator?
    private let sqlite: [SQLiteColumn]
    private let sql: (row: any SQLRow, names: [String])?
    private let count: Int
    private var position = 0

    fileprivate init(postgres row: PostgresRow) {
        postgres = row.makeIterator()
        sqlite = []
        sql = nil
        count = row.count
    }

    fileprivate init(sqlite row: SQLiteRow) {
        postgres = nil
        sqlite = row.columns
        sql = nil
        count = sqlite.count
    }

    fileprivate init(sql row: any SQLRow) throws {
        postgres = nil
        sqlite = []
        let names = row.allColumns
        // Read by name on this path: a name selected twice would read the first column twice.
        guard Set(names).count == names.count else {
            throw PlainRowMismatch(description: "The query selects a column name twice (\(names.joined(separator: ", "))); alias one.")
        }
        sql = (row, names)
        count = names.count
    }

    /// The next column's value; a null where a value is required, or a value of another kind, is an error naming the
    /// column (`PlainRowMismatch` or PostgresNIO's decoding error), never a wrong value.
    mutating func next<Value: PlainColumn>(_: Value.Type = Value.self) throws -> Value {
        guard position < count else { throw PlainRowMismatch.count(selected: count, read: position + 1) }
        defer { position += 1 }
        if postgres != nil { return try postgres!.next()!.decode(Value.self) }
        if let sql { return try sql.row.decode(column: sql.names[position], as: Value.self) }
        guard let value = Value.fromSQLite(sqlite[position].data) else {
            throw PlainRowMismatch.kind(column: sqlite[position].name, expected: Value.self)
        }
        return value
    }

    /// Every selected column must have been read: a query selecting more than its reading expects is a mistake.
    fileprivate func finish() throws {
        guard position == count else { throw PlainRowMismatch.count(selected: count, read: position) }
    }

    fileprivate static func read<Row>(_ row: consuming PlainRow, with reader: (inout PlainRow) throws -> Row) throws -> Row {
        let value = try reader(&row)
        try row.finish()
        return value
    }
}

extension Database {
    /// The rows of a hand-written query, each made by `read` from a `PlainRow`, for work that reads a million rows
    /// (exports, tracking, the overdue list). Rows are read as they arrive, on the connection's own thread: for SQLite
    /// that is its database thread, beside the event loop rather than on it.
    ///
    /// `prepared`: on PostgreSQL the statement is prepared once per connection and its plan kept (a generic plan after
    /// PostgreSQL's first few, or at once after `useGenericPlans()`), for a query whose text does not vary with its
    /// values (lists bound as one array, `= ANY(…)` or `BoundRows`, not as `IN (…)`). Planning a join over
    /// well-indexed tables cost four times its execution: most of PostgreSQL's CPU under the overdue list.
    ///
    /// `rerunnable: false`: a statement whose answer depends on having run once (an insert that returns what it
    /// inserted) is never run again unprepared after a failure: the first run may have committed before its answer was
    /// lost, and the second would answer as if those rows had been there before.
    func plainRows<Row: Sendable>(
        _ query: SQLQueryString, prepared: Bool = false, rerunnable: Bool = true,
        _ read: @escaping @Sendable (inout PlainRow) throws -> Row
    ) async throws -> [Row] {
        let (text, binds) = sql.serialize(query)
        if let sqlite = self as? any SQLiteDatabase {
            let encoder = SQLiteDataEncoder()
            let values = try binds.map { try encoder.encode($0) }
            return try await sqlite.withConnection { connection in
                let gathered = NIOLockedValueBox<(rows: [Row], failure: (any Error)?)>(([], nil))
                try await connection.query(text, values) { row in
                    gathered.withLockedValue { state in
                        guard state.failure == nil else { return }
                        do { state.rows.append(try PlainRow.read(PlainRow(sqlite: row), with: read)) } catch { state.failure = error }
                    }
                }
                return try gathered.withLockedValue { state in
                    if let failure = state.failure { throw failure }
                    return state.rows
                }
            }
        }
        if let postgres = self as? any PostgresDatabase, let bindings = PostgresBindings(plain: binds) {
            postgres.logger.debug("Executing query", metadata: ["sql": .string(text), "prepared": .stringConvertible(prepared)])
            if prepared {
                let shape = PreparedPlainStatement.Shape(text: text, types: binds.compactMap { ($0 as? any PostgresDynamicTypeEncodable)?.psqlType })
                do {
                    return try await postgres.preparedRows(PreparedPlainStatement(bindings: bindings), shape: shape,
                                                           closeIfPoisoned: !inTransaction, read)
                } catch let error as PSQLError {
                    // PostgresNIO keeps a failed prepare under its name for the connection's life (a lock timeout, a
                    // column type a migration changed): that connection was closed, and this once the query runs as
                    // an unprepared one on another. Not inside a transaction, whose connection it was: its caller
                    // gets the error itself. Nor for an error of the values (a constraint, a deadlock), which the
                    // statement survives and an unprepared run would only repeat; the caller must see it as it is
                    // (the journal drops an item the database refuses).
                    if inTransaction || !rerunnable || !PreparedPlainStatement.mayBePoisoned(by: error) { throw error }
                    postgres.logger.warning("Prepared query failed; ran it unprepared", metadata: ["error": .string(String(reflecting: error))])
                }
            }
            let gathered = NIOLockedValueBox<[Row]>([])
            _ = try await postgres.withConnection { connection in
                connection.query(PostgresQuery(unsafeSQL: text, binds: bindings), logger: connection.logger) { row in
                    let value = try PlainRow.read(PlainRow(postgres: row), with: read)
                    gathered.withLockedValue { $0.append(value) }
                }
            }.get()
            return gathered.withLockedValue { $0 }
        }
        return try await sql.raw(query).all().map { try PlainRow.read(try PlainRow(sql: $0), with: read) }
    }
}

extension PostgresDatabase {
    fileprivate func preparedRows<Row: Sendable>(
        _ statement: PreparedPlainStatement, shape: PreparedPlainStatement.Shape, closeIfPoisoned: Bool,
        _ read: @escaping @Sendable (inout PlainRow) throws -> Row
    ) async throws -> [Row] {
        try await withConnection { connection in
            connection.eventLoop.makeFutureWithTask {
                try await PreparedPlainStatement.$shape.withValue(shape) {
                    do {
                        var rows: [Row] = []
                        for try await row in try await connection.execute(statement, logger: connection.logger) {
                            rows.append(try PlainRow.read(PlainRow(postgres: row), with: read))
                        }
                        return rows
                    } catch let error as PSQLError {
                        // The pool drops a closed connection, and with it the failed statement it would keep. Not a
                        // transaction's: closing it under the transaction hung its rollback, and the whole request
                        // with it (a trigger's error in the import's batch, when it was written in a transaction). A
                        // statement left failed there fails again on that connection's next use outside a
                        // transaction, which closes it then.
                        if closeIfPoisoned, PreparedPlainStatement.mayBePoisoned(by: error) { try? await connection.close() }
                        throw error
                    }
                }
            }
        }.get()
    }
}

/// A statement PostgresNIO prepares once per connection under its name: its text and its binds' types are the task's
/// (`$shape`), read by PostgresNIO's `execute` for the one call, and its name a digest of both, so one shape is one
/// statement on every connection however many places run it. The types are those the values are sent as: left to
/// PostgreSQL, a parameter it inferred as `int4` would be sent an `int8`.
fileprivate struct PreparedPlainStatement: PostgresPreparedStatement {
    struct Shape: Sendable {
        let text: String
        let types: [PostgresDataType]
        let name: String

        init(text: String, types: [PostgresDataType]) {
            self.text = text
            self.types = types
            let described = text + "\u{0}" + types.map { String($0.rawValue) }.joined(separator: ",")
            name = "bulwark_" + SHA256.hash(data: Data(described.utf8)).prefix(12).hexString
        }
    }

    @TaskLocal static var shape: Shape?

    /// Whether `error` may have come from preparing the statement, which PostgresNIO then keeps failed on that
    /// connection. Errors of the values (class 22, data; 23, constraints; 40, deadlocks and serialisation) come from
    /// running a statement that was prepared.
    static func mayBePoisoned(by error: PSQLError) -> Bool {
        if DatabaseAvailability.isDataError(error) { return false }
        guard error.code == .server, let state = error.serverInfo?[.sqlState] else { return true }
        return !state.hasPrefix("40")
    }

    private static var current: Shape {
        // Read outside `$shape.withValue` it would prepare an empty statement and answer no rows.
        guard let shape else { preconditionFailure("PreparedPlainStatement read outside its task-local shape") }
        return shape
    }

    static var sql: String { current.text }
    static var name: String { current.name }
    static var bindingDataTypes: [PostgresDataType] { current.types }

    let bindings: PostgresBindings

    func makeBindings() throws -> PostgresBindings { bindings }
    func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
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
