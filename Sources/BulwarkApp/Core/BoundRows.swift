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
/// update took 48 ms, 17 of them the scan. SQLite has no arrays: the rows go as one JSON text read by `json_each`, so
/// the statement's text is the same for any batch there too. (A `VALUES` list of 2,000 rows of 11 binds cost more to
/// parse and prepare than to run: 15% of the tracking flusher's time on a busy 2-core machine.)
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

    /// The rows as a query: `SELECT * FROM unnest($1, $2, …)`, or on SQLite
    /// `SELECT value->>0, value->>1, … FROM json_each(?)` over `[[row 1], [row 2], …]`.
    var table: SQLQueryString {
        precondition(count > 0 && !columns.isEmpty, "No rows to bind")
        if postgres {
            return "SELECT * FROM unnest(\(SQLList(columns.map { SQLBind($0.array) })))"
        }
        var json = "["
        json.reserveCapacity(count * columns.count * 24)
        for row in 0..<count {
            json += row == 0 ? "[" : ",["
            for (index, column) in columns.enumerated() {
                if index > 0 { json += "," }
                column.appendJSON(row: row, to: &json)
            }
            json += "]"
        }
        json += "]"
        let fields = columns.indices.map { SQLRaw("value->>\($0)") as any SQLExpression }
        return "SELECT \(SQLList(fields)) FROM json_each(\(bind: json))"
    }
}

private protocol BoundColumn: Sendable {
    var count: Int { get }
    var array: any Encodable & Sendable { get }
    func appendJSON(row: Int, to json: inout String)
}

private struct Column<Value: JSONScalar & Sendable>: BoundColumn {
    let values: [Value]
    let array: any Encodable & Sendable
    var count: Int { values.count }
    func appendJSON(row: Int, to json: inout String) { values[row].appendJSON(to: &json) }
}

/// A value as SQLite stores it, written as JSON (`->>` reads it back as that SQL type): UUIDs as their uppercase text
/// (Fluent's form on SQLite), dates as seconds since 1970 with a fraction (a real, as SQLiteNIO binds them), booleans
/// as 0 or 1.
private protocol JSONScalar {
    func appendJSON(to json: inout String)
}

extension UUID: JSONScalar {
    fileprivate func appendJSON(to json: inout String) { json += "\"\(uppercasedString)\"" }
}

extension Int: JSONScalar {
    fileprivate func appendJSON(to json: inout String) { json += String(self) }
}

extension Bool: JSONScalar {
    fileprivate func appendJSON(to json: inout String) { json += self ? "1" : "0" }
}

extension Date: JSONScalar {
    /// Always with a fraction or an exponent, so SQLite reads a real even for a whole second. A date that is no
    /// number (none is made from a request) is null, which the statement refuses as it would any missing value.
    fileprivate func appendJSON(to json: inout String) {
        let seconds = timeIntervalSince1970
        guard seconds.isFinite else { return json += "null" }
        let text = "\(seconds)"
        json += text
        if !text.contains(where: { $0 == "." || $0 == "e" }) { json += ".0" }
    }
}

extension String: JSONScalar {
    /// Quoted and escaped as JSON requires: the quote, the backslash and every control character. Sliced by scalar,
    /// not by `Character`: a quote followed by a combining mark is one `Character`.
    fileprivate func appendJSON(to json: inout String) {
        json += "\""
        defer { json += "\"" }
        guard utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) else {
            json += self
            return
        }
        var plainStart = unicodeScalars.startIndex
        for index in unicodeScalars.indices {
            let value = unicodeScalars[index].value
            guard value < 0x20 || value == 0x22 || value == 0x5C else { continue }
            json.unicodeScalars.append(contentsOf: unicodeScalars[plainStart..<index])
            switch value {
            case 0x22: json += "\\\""
            case 0x5C: json += "\\\\"
            case 0x0A: json += "\\n"
            case 0x0D: json += "\\r"
            case 0x09: json += "\\t"
            default: json += "\\u00" + String(value >> 4, radix: 16) + String(value & 0xF, radix: 16)
            }
            plainStart = unicodeScalars.index(after: index)
        }
        json.unicodeScalars.append(contentsOf: unicodeScalars[plainStart...])
    }
}

extension Optional: JSONScalar where Wrapped == String {
    fileprivate func appendJSON(to json: inout String) {
        if let self { self.appendJSON(to: &json) } else { json += "null" }
    }
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
