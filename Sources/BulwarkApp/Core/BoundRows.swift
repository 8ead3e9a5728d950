import FluentKit
import Foundation
import PostgresKit
import SQLKit

/// A batch of rows a statement reads as a table (`WITH v(…) AS (\(rows.table))`), given column by column.
///
/// On PostgreSQL each column is bound as one array and the rows come from `unnest`: the statement's text is the same
/// whatever the batch's size, so it is prepared once per connection (`plainRows(prepared:)`), and its plan joins
/// through indexes. A `VALUES` list of a few thousand binds cost PostgreSQL more to parse and plan than to run, and
/// its row estimate made the planner scan the whole table to hash-join it: at 100,000 simulations a 500-row progress
/// update took 48 ms, 17 of them the scan. On SQLite, which has no arrays, the rows are a `VALUES` list.
struct BoundRows: Sendable {
    let count: Int
    private let postgres: Bool
    private var columns: [any BoundColumn] = []

    init(count: Int, on db: any Database) {
        self.count = count
        postgres = db.sql.dialect.name == "postgresql"
    }

    mutating func add(_ values: [UUID]) { add(Column(values: values, array: values)) }
    mutating func add(_ values: [String]) { add(Column(values: values, array: values)) }
    mutating func add(_ values: [String?]) { add(Column(values: values, array: NullableTextArray(values: values))) }
    mutating func add(_ values: [Date]) { add(Column(values: values, array: values)) }
    mutating func add(_ values: [Int]) { add(Column(values: values, array: values)) }
    mutating func add(_ values: [Bool]) { add(Column(values: values, array: values)) }

    private mutating func add(_ column: some BoundColumn) {
        precondition(column.count == count, "A bound column has \(column.count) values for \(count) rows")
        columns.append(column)
    }

    /// The rows as a query: `SELECT * FROM unnest($1, $2, …)` or `VALUES (?, ?, …), …`.
    var table: SQLQueryString {
        precondition(count > 0 && !columns.isEmpty, "No rows to bind")
        if postgres {
            return "SELECT * FROM unnest(\(SQLList(columns.map { SQLBind($0.array) })))"
        }
        let rows = (0..<count).map { row in SQLGroupExpression(columns.map { SQLBind($0.value(at: row)) } as [any SQLExpression]) }
        return "VALUES \(SQLList(rows))"
    }
}

private protocol BoundColumn: Sendable {
    var count: Int { get }
    var array: any Encodable & Sendable { get }
    func value(at row: Int) -> any Encodable & Sendable
}

private struct Column<Value: Encodable & Sendable>: BoundColumn {
    let values: [Value]
    let array: any Encodable & Sendable
    var count: Int { values.count }
    func value(at row: Int) -> any Encodable & Sendable { values[row] }
}

/// A `text[]` that may hold NULLs, which PostgresNIO's arrays cannot (their elements are never optional). Written in
/// PostgreSQL's binary array format: a null element is a length of -1.
struct NullableTextArray: PostgresNonThrowingEncodable, PostgresDynamicTypeEncodable, Encodable, Sendable {
    let values: [String?]

    static var psqlType: PostgresDataType { .textArray }
    static var psqlFormat: PostgresFormat { .binary }

    func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        buffer.writeInteger(values.isEmpty ? 0 : 1, as: Int32.self)  // dimensions
        buffer.writeInteger(values.contains(nil) ? 1 : 0, as: Int32.self)  // has nulls
        buffer.writeInteger(PostgresDataType.text.rawValue)
        guard !values.isEmpty else { return }
        buffer.writeInteger(Int32(values.count))
        buffer.writeInteger(1, as: Int32.self)  // lower bound
        for value in values {
            guard let value else {
                buffer.writeInteger(-1, as: Int32.self)
                continue
            }
            buffer.writeInteger(Int32(value.utf8.count))
            buffer.writeString(value)
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(values)
    }
}

extension Database {
    /// For the rest of this transaction on PostgreSQL, prepared statements run their generic plan from the first
    /// execution. PostgreSQL otherwise plans the first five runs on each connection for their values: given an array
    /// of 1,100 tokens, such a plan hash-joined a scan of all 30,000 simulations (31 ms under load) where the generic
    /// plan probes the index once per token (2–4 ms). Scoped to the transaction (`SET LOCAL`) because a session-wide
    /// setting would also apply to every unnamed statement PostgresNIO sends with binds, which are planned for their
    /// values on purpose.
    func useGenericPlans() async throws {
        guard sql.dialect.name == "postgresql" else { return }
        try await sql.raw("SET LOCAL plan_cache_mode = force_generic_plan").run()
    }

    /// A statement that answers no rows, through `plainRows` (and so prepared on PostgreSQL when asked).
    func plainRun(_ query: SQLQueryString, prepared: Bool = false) async throws {
        _ = try await plainRows(query, prepared: prepared) { _ in () }
    }
}
