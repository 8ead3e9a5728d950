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
        // CROSS JOIN keeps SQLite's join order (enrolments first, along the (client, due) index) whatever its statistics
        // say; PostgreSQL plans it as the inner join it is.
        let from: SQLQueryString = """
            FROM training_enrollments e CROSS JOIN users u CROSS JOIN training_campaigns c
            WHERE u.id = e.user_id AND c.id = e.campaign_id AND \(filter)
            """
        let db = self.db
        let totalKey = "overdue:\(clientID):\(department ?? ""):\(managerID?.uuidString ?? "")"
        // Counting distinct people through three tables costs a few milliseconds per thousand, so this list is exact
        // only up to a thousand people (above that, the count of a moment ago, flagged as estimated).
        let exactLimit = 1_000
        let total = try await ListTotals.total(key: totalKey, exactLimit: exactLimit, bounded: {
            try await db.sql.raw("""
                SELECT COUNT(*) AS total FROM (SELECT DISTINCT e.user_id \(from) LIMIT \(bind: exactLimit + 1)) AS people
                """).first()?.decode(column: "total", as: Int.self) ?? 0
        }, full: {
            try await db.sql.raw("SELECT COUNT(DISTINCT e.user_id) AS total \(from)").first()?
                .decode(column: "total", as: Int.self) ?? 0
        })
        // Each person's oldest overdue assignment, in due order, without grouping the whole client: the walk follows
        // the (client, due) index and keeps a row only when the person has no older overdue one, so it stops as soon
        // as the page is full. PostgreSQL would turn the NOT EXISTS into an anti-join over every open assignment (a
        // second a page at 200,000 people); "OFFSET 0" keeps it a per-row probe there (SQLite needs no such hint and
        // accepts no OFFSET without LIMIT).
        let now = self.now
        let sqlite = db.sql.dialect.name == "sqlite"
        let keepProbe = sqlite ? "" : " OFFSET 0"
        let userIDs = try await db.plainRows("""
            SELECT e.user_id \(from)
              AND NOT EXISTS (
                SELECT 1 FROM training_enrollments o JOIN training_campaigns oc ON oc.id = o.campaign_id
                WHERE o.user_id = e.user_id AND o.client_id = e.client_id AND o.status <> 'completed'
                  AND o.due_at < \(bind: now) AND oc.status IN ('active', 'completed')
                  AND (o.due_at < e.due_at OR (o.due_at = e.due_at AND o.id < e.id))\(unsafeRaw: keepProbe))
            ORDER BY e.due_at, e.user_id LIMIT \(bind: page.perPage) OFFSET \(bind: page.offset)
            """, prepared: true) { try $0.next(UUID.self) }
        let meta = PaginationMeta(page: page.page, perPage: page.perPage, total: total.count, estimated: total.estimated)
        guard !userIDs.isEmpty else { return PageResult(items: [], meta: meta) }
        // The page's people and their overdue assignments in one query of plain rows with only what is shown (as Fluent
        // models, the people were a quarter of the list's CPU, and the campaigns read every module's lessons). The
        // page's people lead (their index); on SQLite the client and due filters are kept off their indexes ("+"),
        // which without statistics it would otherwise walk: every open assignment of the client. A person whose last
        // overdue assignment was completed since the walk above has no row here and leaves the page.
        let plain = sqlite ? "+" : ""
        // One array bind on PostgreSQL keeps the statement's text the same whatever the page's size, so it is prepared once.
        let onPage: SQLQueryString = sqlite ? "e.user_id IN (\(binds: userIDs))" : "e.user_id = ANY(\(bind: userIDs))"
        let itemRows = try await db.plainRows("""
            SELECT \(UserResponse.plainColumns("u")), e.id AS enrollment_id, e.campaign_id, c.name AS campaign_name, e.module_id,
                   m.title AS module_title, e.due_at, e.progress
            FROM training_enrollments e JOIN users u ON u.id = e.user_id JOIN training_campaigns c ON c.id = e.campaign_id
                 JOIN training_modules m ON m.id = e.module_id
            WHERE \(onPage) AND \(unsafeRaw: plain)e.client_id = \(bind: clientID)
              AND e.status <> 'completed' AND \(unsafeRaw: plain)e.due_at < \(bind: now) AND c.status IN ('active', 'completed')
            ORDER BY e.due_at, e.id
            """, prepared: true) { row in
            let user = try UserResponse(plain: &row)
            let (id, campaignID, campaignName, moduleID, moduleTitle): (UUID, UUID, String, UUID, String) =
                try (row.next(), row.next(), row.next(), row.next(), row.next())
            let (due, progress): (Date, Int) = try (row.next(), row.next())
            return (user, Item(enrollmentId: id, campaignId: campaignID, campaignName: campaignName, moduleId: moduleID,
                               moduleTitle: moduleTitle, dueAt: due, daysOverdue: Self.daysOverdue(due, now: now), progress: progress))
        }
        var people: [UUID: (user: UserResponse, items: [Item])] = [:]
        for (user, item) in itemRows { people[user.id, default: (user, [])].items.append(item) }
        let rows = userIDs.compactMap { id -> Row? in
            guard let (user, items) = people[id] else { return nil }
            return Row(user: user, overdueCount: items.count, maxDaysOverdue: items.map(\.daysOverdue).max() ?? 0, items: items)
        }
        return PageResult(items: rows, meta: meta)
    }
}

/// The overdue list walks a client's open assignments in due order and probes each person's older ones; auto-enrolment
/// probes (campaign, person).
struct CreateOverdueIndexes: AsyncMigration {
    static let indexes: [(name: String, columns: [String])] = [
        ("training_enrollments_open_due_idx", ["client_id", "due_at", "user_id"]),
        ("training_enrollments_open_user_idx", ["user_id", "due_at"]),
    ]

    func prepare(on database: any Database) async throws {
        for index in Self.indexes {
            try await database.createIndex(on: Enrollment.schema, name: index.name, columns: index.columns,
                                           partial: "status <> 'completed'")
        }
        // Auto-enrolment asks "is this person in the campaign yet?" for each person of the audience.
        try await database.createIndex(on: Enrollment.schema, name: "training_enrollments_campaign_user_idx",
                                       columns: ["campaign_id", "user_id"])
    }

    func revert(on database: any Database) async throws {
        for index in Self.indexes { try await database.dropIndex(index.name) }
        try await database.dropIndex("training_enrollments_campaign_user_idx")
    }
}

/// Exports page through a client's (or a campaign's) enrolments by id, and audience walks (enrolment, phishing launch)
/// through a client's people by id: each page is an index range that stops at the page size, instead of a sort of the
/// whole client per page.
struct CreateWalkIndexes: AsyncMigration {
    static let indexes: [(name: String, columns: [String])] = [
        ("training_enrollments_client_id_idx", ["client_id", "id"]),
        ("training_enrollments_campaign_id_idx", ["campaign_id", "id"]),
    ]

    func prepare(on database: any Database) async throws {
        for index in Self.indexes { try await database.createIndex(on: Enrollment.schema, name: index.name, columns: index.columns) }
        try await database.createIndex(on: User.schema, name: "users_client_walk_idx", columns: ["client_id", "id"])
    }

    func revert(on database: any Database) async throws {
        for index in Self.indexes { try await database.dropIndex(index.name) }
        try await database.dropIndex("users_client_walk_idx")
    }
}
