import Fluent
import SQLKit
import Vapor

/// People with overdue training: which campaigns and modules, and how late.
struct OverdueService: Sendable {
    let db: any Database
    let now: Date

    struct Item: Encodable, Sendable {
        let enrollmentId: UUID
        let campaignId: UUID
        let campaignName: String
        let moduleId: UUID
        let moduleTitle: String
        let dueAt: Date
        let daysOverdue: Int
        let progress: Int
    }

    struct Row: Encodable, Sendable {
        let user: UserResponse
        let overdueCount: Int
        let maxDaysOverdue: Int
        let items: [Item]
    }

    static func daysOverdue(_ due: Date, now: Date) -> Int { max(0, Int(now.timeIntervalSince(due) / 86_400)) }

    func list(clientID: UUID, department: String?, managerID: UUID?, page: PageParams) async throws -> PageResult<Row> {
        var conditions: [SQLQueryString] = [
            "e.client_id = \(bind: clientID)", "e.status <> 'completed'", "e.due_at < \(bind: now)", "u.status = 'active'",
            "c.status IN ('active', 'completed')",
        ]
        if let department { conditions.append("u.department = \(bind: department)") }
        if let managerID { conditions.append("u.manager_id = \(bind: managerID)") }
        let filter = conditions.dropFirst().reduce(conditions[0]) { "\($0) AND \($1)" }
        let from: SQLQueryString = """
            FROM training_enrollments e JOIN users u ON u.id = e.user_id JOIN training_campaigns c ON c.id = e.campaign_id
            WHERE \(filter)
            """
        let total = try await db.sql.raw("SELECT COUNT(DISTINCT e.user_id) AS total \(from)").first()?
            .decode(column: "total", as: Int.self) ?? 0
        let userRows = try await db.sql.raw("""
            SELECT e.user_id AS user_id, MIN(e.due_at) AS oldest \(from)
            GROUP BY e.user_id ORDER BY oldest, e.user_id LIMIT \(bind: page.perPage) OFFSET \(bind: page.offset)
            """).all()
        let userIDs = try userRows.map { try $0.decode(column: "user_id", as: UUID.self) }
        let meta = PaginationMeta(page: page.page, perPage: page.perPage, total: total)
        guard !userIDs.isEmpty else { return PageResult(items: [], meta: meta) }
        let users = Dictionary(uniqueKeysWithValues: try await User.query(on: db).filter(\.$id ~~ userIDs).all().map { ($0.id!, $0) })
        let enrollments = try await Enrollment.query(on: db)
            .filter(\.$user.$id ~~ userIDs).filter(\.$clientID == clientID)
            .filter(\.$status != "completed").filter(\.$dueAt < now)
            .join(TrainingCampaign.self, on: \Enrollment.$campaign.$id == \TrainingCampaign.$id)
            .filter(TrainingCampaign.self, \.$status ~~ ["active", "completed"])
            .with(\.$campaign).with(\.$module).sort(\.$dueAt).all()
        let grouped = Dictionary(grouping: enrollments, by: { $0.$user.id })
        let rows = userIDs.compactMap { id -> Row? in
            guard let user = users[id] else { return nil }
            let items = (grouped[id] ?? []).map {
                Item(enrollmentId: $0.id!, campaignId: $0.$campaign.id, campaignName: $0.campaign.name, moduleId: $0.$module.id,
                     moduleTitle: $0.module.title, dueAt: $0.dueAt, daysOverdue: Self.daysOverdue($0.dueAt, now: now),
                     progress: $0.progress)
            }
            return Row(user: UserResponse(user), overdueCount: items.count, maxDaysOverdue: items.map(\.daysOverdue).max() ?? 0,
                       items: items)
        }
        return PageResult(items: rows, meta: meta)
    }
}
