import Fluent
import SQLKit
import Vapor

/// Program statistics from simulations (scanner events never move a simulation, so they are left out by construction).
struct PhishingStatsService: Sendable {
    let db: any Database

    struct Rates: Encodable, Sendable {
        var sent = 0
        var opened = 0
        var clicked = 0
        var submitted = 0
        var reported = 0
        var clickRate: Double = 0
        var submitRate: Double = 0
        var reportRate: Double = 0
    }

    struct Group: Encodable, Sendable {
        let key: String
        let rates: Rates
    }

    struct RepeatClicker: Encodable, Sendable {
        let userId: UUID
        let email: String
        let clicks: Int
    }

    struct Stats: Encodable, Sendable {
        let totals: Rates
        let byMonth: [Group]
        let byDepartment: [Group]
        let byTemplate: [Group]
        let repeatClickers: [RepeatClicker]
        @Nullable var medianMinutesToFirstReport: Double?
        let flaggedScannerEvents: Int
    }

    private func grouped(_ expression: String, clientID: UUID, from: Date?, to: Date?) async throws -> [Group] {
        let rows = try await db.sql.raw("""
            SELECT \(unsafeRaw: expression) AS grouping, COUNT(*) AS sent,
              CAST(SUM(CASE WHEN stage >= 2 THEN 1 ELSE 0 END) AS BIGINT) AS opened,
              CAST(SUM(CASE WHEN stage >= 3 THEN 1 ELSE 0 END) AS BIGINT) AS clicked,
              CAST(SUM(CASE WHEN stage >= 4 THEN 1 ELSE 0 END) AS BIGINT) AS submitted,
              CAST(SUM(CASE WHEN reported_at IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS reported
            FROM phishing_simulations
            WHERE client_id = \(bind: clientID) AND send_status = 'sent'
              AND sent_at >= \(bind: from ?? Date(timeIntervalSince1970: 0)) AND sent_at <= \(bind: to ?? Date.distantFuture)
            GROUP BY \(unsafeRaw: expression) ORDER BY \(unsafeRaw: expression)
            """).all()
        return try rows.map { row in
            func int(_ column: String) throws -> Int { try row.decode(column: column, as: Int?.self) ?? 0 }
            var rates = Rates(sent: try int("sent"), opened: try int("opened"), clicked: try int("clicked"),
                              submitted: try int("submitted"), reported: try int("reported"))
            rates.clickRate = Percent.of(rates.clicked, rates.sent)
            rates.submitRate = Percent.of(rates.submitted, rates.sent)
            rates.reportRate = Percent.of(rates.reported, rates.sent)
            let key = (try? row.decode(column: "grouping", as: String?.self)) ?? nil
            return Group(key: key ?? "unassigned", rates: rates)
        }
    }

    func stats(clientID: UUID, from: Date?, to: Date?) async throws -> Stats {
        let month = db.sql.dialect.name == "postgresql" ? "to_char(sent_at, 'YYYY-MM')" : "strftime('%Y-%m', sent_at)"
        let totals = try await grouped("CAST(client_id AS TEXT)", clientID: clientID, from: from, to: to).first?.rates ?? Rates()
        let byMonth = try await grouped(month, clientID: clientID, from: from, to: to)
        let byDepartment = try await grouped("department", clientID: clientID, from: from, to: to)
        let byTemplate = try await grouped(db.sql.dialect.name == "postgresql" ? "CAST(template_id AS TEXT)" : "template_id",
                                           clientID: clientID, from: from, to: to)
        let repeaters = try await db.sql.raw("""
            SELECT user_id, MIN(email) AS email, COUNT(*) AS clicks FROM phishing_simulations
            WHERE client_id = \(bind: clientID) AND stage >= 3 GROUP BY user_id HAVING COUNT(*) > 1 ORDER BY clicks DESC LIMIT 50
            """).all().map {
                RepeatClicker(userId: try $0.decode(column: "user_id", as: UUID.self), email: try $0.decode(column: "email", as: String.self),
                              clicks: try $0.decode(column: "clicks", as: Int.self))
            }
        let reported = try await Simulation.query(on: db).filter(\.$clientID == clientID).filter(\.$reportedAt != nil)
            .filter(\.$sentAt != nil).limit(10_000).all()
        let minutes = reported.compactMap { simulation in simulation.sentAt.map { simulation.reportedAt!.timeIntervalSince($0) / 60 } }.sorted()
        let median = minutes.isEmpty ? nil : (minutes[minutes.count / 2] * 10).rounded() / 10
        // `is_bot` as a term of its own, which the partial index `phishing_events_flagged_idx` answers (a bound
        // `is_bot = ?` would not prove the index's condition to SQLite's planner).
        let flagged = try await db.sql.raw("SELECT COUNT(*) AS n FROM phishing_events WHERE client_id = \(bind: clientID) AND is_bot")
            .first()?.decode(column: "n", as: Int.self) ?? 0
        return Stats(totals: totals, byMonth: byMonth, byDepartment: byDepartment, byTemplate: byTemplate, repeatClickers: repeaters,
                     medianMinutesToFirstReport: median, flaggedScannerEvents: flagged)
    }
}
