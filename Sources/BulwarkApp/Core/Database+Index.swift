import Fluent
import SQLKit

extension Database {
    /// Fluent's schema builder has no index API; both SQLite and PostgreSQL accept this statement.
    /// `partial`: a literal condition (a partial index holds only those rows; queries must repeat it literally).
    func createIndex(on table: String, name: String, columns: [String], unique: Bool = false, partial: String? = nil) async throws {
        guard let sql = self as? any SQLDatabase else { return }
        let kind = unique ? "UNIQUE INDEX" : "INDEX"
        let condition = partial.map { " WHERE \($0)" } ?? ""
        try await sql.raw("CREATE \(unsafeRaw: kind) IF NOT EXISTS \(ident: name) ON \(ident: table) (\(unsafeRaw: columns.map { "\"\($0)\"" }.joined(separator: ", ")))\(unsafeRaw: condition)").run()
    }

    func dropIndex(_ name: String) async throws {
        try await sql.raw("DROP INDEX IF EXISTS \(ident: name)").run()
    }

    var sql: any SQLDatabase { self as! any SQLDatabase }
}
