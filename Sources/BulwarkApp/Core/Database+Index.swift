import Fluent
import SQLKit

extension Database {
    /// Fluent's schema builder has no index API; both SQLite and PostgreSQL accept this statement.
    func createIndex(on table: String, name: String, columns: [String], unique: Bool = false) async throws {
        guard let sql = self as? any SQLDatabase else { return }
        let kind = unique ? "UNIQUE INDEX" : "INDEX"
        try await sql.raw("CREATE \(unsafeRaw: kind) IF NOT EXISTS \(ident: name) ON \(ident: table) (\(unsafeRaw: columns.map { "\"\($0)\"" }.joined(separator: ", ")))").run()
    }

    var sql: any SQLDatabase { self as! any SQLDatabase }
}
