import Fluent
import SQLKit
import Vapor

/// A manager's reports and their compliance. Phishing figures join here when that feature lands.
struct TeamService: Sendable {
    let db: any Database
    let now: Date

    struct Member: Encodable, Sendable {
        let user: UserResponse
        let depth: Int
        let assigned: Int
        let completed: Int
        let overdue: Int
        let dueSoon: Int
        let completionRate: Double
        @Nullable var averageScore: Double?
        /// compliant, at_risk (due within 7 days, unfinished) or non_compliant (anything overdue).
        let status: String
        /// Phishing simulation results (null for someone never sent a simulation).
        @Nullable var phishing: PhishingFigures?
    }

    struct PhishingFigures: Encodable, Sendable {
        let sent: Int
        let clicked: Int
        let reported: Int
    }

    struct Stats: Encodable, Sendable {
        let members: Int
        let compliant: Int
        let atRisk: Int
        let nonCompliant: Int
        let assignments: Int
        let completed: Int
        let overdue: Int
        let completionRate: Double
        @Nullable var averageScore: Double?
    }

    /// Direct reports, or with `allLevels` everyone below the manager (cycles in the manager graph are ignored).
    func reports(of manager: User, allLevels: Bool) async throws -> [(User, Int)] {
        var result: [(User, Int)] = []
        var seen: Set<UUID> = [manager.id!]
        var frontier = [manager.id!]
        var depth = 1
        while !frontier.isEmpty {
            let level = try await User.query(on: db).filter(\.$manager.$id ~~ frontier).filter(\.$client.$id == manager.$client.id ?? UUID())
                .filter(\.$status != UserErasure.status)
                .sort(\.$lastName).sort(\.$firstName).all().filter { !seen.contains($0.id!) }
            result += level.map { ($0, depth) }
            seen.formUnion(level.compactMap(\.id))
            frontier = allLevels ? level.compactMap(\.id) : []
            depth += 1
        }
        return result
    }

    func members(of manager: User, allLevels: Bool) async throws -> [Member] {
        try await members(for: try await reports(of: manager, allLevels: allLevels))
    }

    /// Training and phishing figures of the given people (with their depth below the manager), in two grouped queries.
    func members(for people: [(User, Int)]) async throws -> [Member] {
        let ids = people.compactMap { $0.0.id }
        var figures: [UUID: (assigned: Int, completed: Int, overdue: Int, dueSoon: Int, average: Double?)] = [:]
        if !ids.isEmpty {
            let soon = now.addingTimeInterval(7 * 86_400)
            let rows = try await db.sql.raw("""
                SELECT e.user_id AS user_id, COUNT(*) AS assigned,
                       CAST(SUM(CASE WHEN e.status = 'completed' THEN 1 ELSE 0 END) AS BIGINT) AS completed,
                       CAST(SUM(CASE WHEN e.status <> 'completed' AND e.due_at < \(bind: now) THEN 1 ELSE 0 END) AS BIGINT) AS overdue,
                       CAST(SUM(CASE WHEN e.status <> 'completed' AND e.due_at >= \(bind: now) AND e.due_at < \(bind: soon) THEN 1 ELSE 0 END) AS BIGINT) AS due_soon,
                       CAST(AVG(CASE WHEN e.status = 'completed' THEN e.best_score END) AS DOUBLE PRECISION) AS average_score
                FROM training_enrollments e JOIN training_campaigns c ON c.id = e.campaign_id
                WHERE e.user_id IN (\(binds: ids)) AND c.status IN ('active', 'completed')
                GROUP BY e.user_id
                """).all()
            for row in rows {
                figures[try row.decode(column: "user_id", as: UUID.self)] = (
                    try row.decode(column: "assigned", as: Int.self),
                    try row.decode(column: "completed", as: Int?.self) ?? 0,
                    try row.decode(column: "overdue", as: Int?.self) ?? 0,
                    try row.decode(column: "due_soon", as: Int?.self) ?? 0,
                    try row.decode(column: "average_score", as: Double?.self))
            }
        }
        var phishing: [UUID: PhishingFigures] = [:]
        if !ids.isEmpty {
            let rows = try await db.sql.raw("""
                SELECT user_id, CAST(SUM(CASE WHEN send_status = 'sent' THEN 1 ELSE 0 END) AS BIGINT) AS sent,
                       CAST(SUM(CASE WHEN stage >= 3 THEN 1 ELSE 0 END) AS BIGINT) AS clicked,
                       CAST(SUM(CASE WHEN reported_at IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS reported
                FROM phishing_simulations WHERE user_id IN (\(binds: ids)) GROUP BY user_id
                """).all()
            for row in rows {
                phishing[try row.decode(column: "user_id", as: UUID.self)] = PhishingFigures(
                    sent: try row.decode(column: "sent", as: Int?.self) ?? 0, clicked: try row.decode(column: "clicked", as: Int?.self) ?? 0,
                    reported: try row.decode(column: "reported", as: Int?.self) ?? 0)
            }
        }
        return people.map { user, depth in
            let figure = figures[user.id!] ?? (0, 0, 0, 0, nil)
            let status = figure.overdue > 0 ? "non_compliant" : (figure.dueSoon > 0 ? "at_risk" : "compliant")
            return Member(user: UserResponse(user), depth: depth, assigned: figure.assigned, completed: figure.completed,
                          overdue: figure.overdue, dueSoon: figure.dueSoon, completionRate: Percent.of(figure.completed, figure.assigned),
                          averageScore: figure.average.map { ($0 * 10).rounded() / 10 }, status: status, phishing: phishing[user.id!])
        }
    }

    func stats(of members: [Member]) -> Stats {
        let assignments = members.reduce(0) { $0 + $1.assigned }
        let completed = members.reduce(0) { $0 + $1.completed }
        let scores = members.compactMap(\.averageScore)
        return Stats(members: members.count, compliant: members.filter { $0.status == "compliant" }.count,
                     atRisk: members.filter { $0.status == "at_risk" }.count,
                     nonCompliant: members.filter { $0.status == "non_compliant" }.count,
                     assignments: assignments, completed: completed, overdue: members.reduce(0) { $0 + $1.overdue },
                     completionRate: Percent.of(completed, assignments),
                     averageScore: scores.isEmpty ? nil : ((scores.reduce(0, +) / Double(scores.count)) * 10).rounded() / 10)
    }

}
