import FluentKit
import Foundation
import SQLKit
import Vapor

/// One sort column's value in a cursor (or a page anchor, `PageAnchors`).
enum KeysetValue: Codable, Sendable, Equatable {
    case text(String)
    /// Seconds since Foundation's reference date (kept for reading; the query compares the stored value).
    case time(Double)
    case id(UUID)

    var bind: any Encodable & Sendable {
        switch self {
        case let .text(text): text
        case let .time(seconds): Date(timeIntervalSinceReferenceDate: seconds)
        case let .id(id): id
        }
    }
}

/// Keyset paging: `cursor` (from the previous page's `next_cursor`) continues a list after the last row it returned,
/// by the values of the list's sort columns, instead of skipping `offset` rows. Rows inserted or deleted meanwhile
/// never make a row appear twice or be skipped, and a deep page costs what the first one does. The sort columns must
/// be non-null and end with the id; all run in one direction.
struct Keyset<Model: FluentKit.Model>: Sendable {
    typealias Value = KeysetValue

    /// Column name and how to read it from a model.
    let columns: [(name: String, value: @Sendable (Model) -> Value)]
    let descending: Bool

    /// The order it describes, as text: tells two orders of one list apart in a cache key.
    var order: String { columns.map(\.name).joined(separator: ",") + (descending ? " desc" : " asc") }

    /// Orders the query by the key, and continues after `cursor` when there is one.
    func apply(to query: QueryBuilder<Model>, after cursor: [Value]?) {
        for column in columns {
            query.sort(.sql(embed: "\(ident: Model.schema).\(ident: column.name)"), descending ? .descending : .ascending)
        }
        guard let cursor else { return }
        let names = SQLList(columns.map { SQLColumn(SQLIdentifier($0.name), table: SQLIdentifier(Model.schema)) })
        // A time is read back from the row itself (by its id, the last value): a stored timestamp does not survive a
        // trip through `Date` bit for bit, and a value off by one unit would repeat or skip that row.
        let lastID = cursor.last.map { SQLBind($0.bind) }
        let values = SQLList(zip(columns, cursor).map { column, value -> any SQLExpression in
            guard case .time = value, let lastID else { return SQLBind(value.bind) }
            return SQLGroupExpression(SQLQueryString("SELECT \(ident: column.name) FROM \(ident: Model.schema) WHERE id = \(lastID)"))
        })
        query.filter(.sql(embed: "(\(names)) \(unsafeRaw: descending ? "<" : ">") (\(values))"))
    }

    /// The cursor that continues after the page's last row, when rows follow it.
    func nextCursor(after items: [Model], more: Bool) -> String? {
        guard more, let last = items.last else { return nil }
        let data = (try? JSONEncoder().encode(columns.map { $0.value(last) })) ?? Data()
        return RandomToken.base64URL(data)
    }

    /// Reads `cursor` from the query string: nil when absent, 400 naming the field when it is not one of ours.
    func cursor(from request: Request) throws -> [Value]? {
        guard let text = request.queryText("cursor"), !text.isEmpty else { return nil }
        guard text.count <= 2048, let data = RandomToken.bytes(base64URL: text),
              let values = try? JSONDecoder().decode([Value].self, from: data), values.count == columns.count,
              zip(columns, values).allSatisfy({ Self.fits($1, column: $0.name) }) else {
            throw APIError.validation(["cursor": ["The cursor is not valid; use next_cursor from the previous page."]])
        }
        return values
    }

    /// Columns whose cursor value is a time (read back from the anchor row); every other column but the id is text.
    static var timeColumns: Set<String> { ["created_at", "updated_at"] }

    /// A value of the kind its column holds: a forged cursor cannot make the anchor lookup read another column.
    private static func fits(_ value: Value, column: String) -> Bool {
        switch value {
        case .id: column == "id"
        case .time: timeColumns.contains(column)
        // A NUL, which PostgreSQL refuses in text, would fail the query: a 500 instead of the cursor's 400.
        case let .text(text): column != "id" && !timeColumns.contains(column) && !text.utf8.contains(0)
        }
    }
}
