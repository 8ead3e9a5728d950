import Foundation
import Fluent
import SQLKit

extension Simulation {
    /// On PostgreSQL, locks the rows in id order, the order every writer of simulations takes them in, before a
    /// statement that joins a batch in whatever order the planner picks: concurrent batches and cancels cannot
    /// deadlock. (SQLite has one writer.)
    static func lockInIDOrder(_ ids: [UUID], on db: any Database) async throws {
        guard db.sql.dialect.name == "postgresql", !ids.isEmpty else { return }
        let ordered = Set(ids).sorted(by: UUID.byteOrder)
        try await db.sql.raw("""
            SELECT id FROM phishing_simulations WHERE id IN (\(SQLList(ordered.map { SQLBind($0) })))
            ORDER BY id FOR NO KEY UPDATE
            """).run()
    }
}
