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
        // One array bind: the statement is prepared once and probes the primary key (an `IN` list of 2,000 binds was
        // parsed and planned for every batch).
        _ = try await db.plainRows("""
            SELECT id FROM phishing_simulations WHERE id = ANY(\(bind: ordered)) ORDER BY id FOR NO KEY UPDATE
            """, prepared: true) { try $0.next(UUID.self) }
    }
}
