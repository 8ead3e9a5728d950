import Fluent
import SQLKit
import Vapor

/// Per-client training preferences that are not part of a campaign.
final class TrainingSettings: Model, @unchecked Sendable {
    static let schema = "training_settings"

    @ID(custom: "client_id", generatedBy: .user) var id: UUID?
    @Field(key: "leaderboard_show_names") var leaderboardShowNames: Bool

    init() {}
}

struct CreateTrainingSettings: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(TrainingSettings.schema)
            .field("client_id", .uuid, .identifier(auto: false), .references(Client.schema, .id, onDelete: .cascade))
            .field("leaderboard_show_names", .bool, .required)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(TrainingSettings.schema).delete()
    }
}

/// Points: 100 per completed assignment plus its best score, counted by completion date within the period, and 50 per
/// reported phishing simulation.
struct LeaderboardService: Sendable {
    let db: any Database
    let now: Date

    static let periods = ["week", "month", "quarter", "year", "all"]
    static let completionPoints = 100
    /// Reporting a simulated phishing email earns points too: the behaviour the program wants most.
    static let reportPoints = 50

    struct PersonEntry: Encodable, Sendable {
        let rank: Int
        let userId: UUID
        let name: String
        @Nullable var department: String?
        let points: Int
        let completions: Int
        @Nullable var averageScore: Double?
    }

    struct DepartmentEntry: Encodable, Sendable {
        let rank: Int
        let department: String
        let points: Int
        let members: Int
        let pointsPerMember: Double
        let completions: Int
    }

    func since(_ period: String) -> Date? {
        let days: Double? = ["week": 7, "month": 30, "quarter": 91, "year": 365][period]
        return days.map { now.addingTimeInterval(-$0 * 86_400) }
    }

    private func rows(clientID: UUID, period: String) async throws -> [(UUID, Int, Int, Double?)] {
        var training = try await trainingRows(clientID: clientID, period: period)
        var reportCondition: SQLQueryString = "s.client_id = \(bind: clientID) AND s.reported_at IS NOT NULL AND u.status = 'active'"
        if let since = since(period) { reportCondition = "\(reportCondition) AND s.reported_at >= \(bind: since)" }
        let reports = try await db.sql.raw("""
            SELECT s.user_id AS user_id, COUNT(*) AS reports FROM phishing_simulations s JOIN users u ON u.id = s.user_id
            WHERE \(reportCondition) GROUP BY s.user_id
            """).all()
        for row in reports {
            let userID = try row.decode(column: "user_id", as: UUID.self)
            let points = try row.decode(column: "reports", as: Int.self) * Self.reportPoints
            if let index = training.firstIndex(where: { $0.0 == userID }) { training[index].1 += points }
            else { training.append((userID, points, 0, nil)) }
        }
        return training
    }

    private func trainingRows(clientID: UUID, period: String) async throws -> [(UUID, Int, Int, Double?)] {
        var condition: SQLQueryString = "e.client_id = \(bind: clientID) AND e.status = 'completed' AND u.status = 'active'"
        if let since = since(period) { condition = "\(condition) AND e.completed_at >= \(bind: since)" }
        return try await db.sql.raw("""
            SELECT e.user_id AS user_id, COUNT(*) AS completions,
                   CAST(SUM(\(unsafeRaw: String(Self.completionPoints)) + COALESCE(e.best_score, 0)) AS BIGINT) AS points,
                   CAST(AVG(e.best_score) AS DOUBLE PRECISION) AS average_score
            FROM training_enrollments e JOIN users u ON u.id = e.user_id
            WHERE \(condition) GROUP BY e.user_id
            """).all().map {
                (try $0.decode(column: "user_id", as: UUID.self), try $0.decode(column: "points", as: Int.self),
                 try $0.decode(column: "completions", as: Int.self), try $0.decode(column: "average_score", as: Double?.self))
            }
    }

    func people(clientID: UUID, period: String, showNames: Bool) async throws -> [PersonEntry] {
        let figures = try await rows(clientID: clientID, period: period).sorted { ($0.1, $1.0.uuidString) > ($1.1, $0.0.uuidString) }
        let users = Dictionary(uniqueKeysWithValues: try await User.query(on: db).filter(\.$id ~~ figures.map(\.0)).all().map { ($0.id!, $0) })
        return figures.enumerated().compactMap { index, figure in
            guard let user = users[figure.0] else { return nil }
            return PersonEntry(rank: index + 1, userId: user.id!, name: showNames ? user.fullName : Self.initials(user),
                               department: user.department, points: figure.1, completions: figure.2,
                               averageScore: figure.3.map { ($0 * 10).rounded() / 10 })
        }
    }

    func departments(clientID: UUID, period: String) async throws -> [DepartmentEntry] {
        let figures = try await rows(clientID: clientID, period: period)
        let users = try await User.query(on: db).filter(\.$client.$id == clientID).filter(\.$status == "active").all()
        let departmentOf = Dictionary(uniqueKeysWithValues: users.map { ($0.id!, $0.department ?? "Unassigned") })
        let headcount = Dictionary(grouping: users, by: { $0.department ?? "Unassigned" }).mapValues(\.count)
        var points: [String: (Int, Int)] = [:]
        for figure in figures {
            let department = departmentOf[figure.0] ?? "Unassigned"
            points[department, default: (0, 0)].0 += figure.1
            points[department, default: (0, 0)].1 += figure.2
        }
        let entries = headcount.keys.map { department -> (String, Int, Int, Int) in
            (department, points[department]?.0 ?? 0, headcount[department] ?? 0, points[department]?.1 ?? 0)
        }
        // Ranked per member so large departments do not win by size alone.
        return entries.sorted { (Double($0.1) / Double(max($0.2, 1)), $1.0) > (Double($1.1) / Double(max($1.2, 1)), $0.0) }
            .enumerated().map { index, entry in
                DepartmentEntry(rank: index + 1, department: entry.0, points: entry.1, members: entry.2,
                                pointsPerMember: (Double(entry.1) / Double(max(entry.2, 1)) * 10).rounded() / 10, completions: entry.3)
            }
    }

    static func initials(_ user: User) -> String {
        [user.firstName, user.lastName].compactMap { $0.first.map { "\($0)." } }.joined()
    }
}

/// Seed 000: GET /api/v1/leaderboard, and its name-display setting.
struct LeaderboardController: RouteCollection {
    struct SettingsBody: Codable { var showNames: Bool? }

    func boot(routes: any RoutesBuilder) throws {
        routes.get("api", "v1", "leaderboard", use: show)
        routes.get("api", "v1", "leaderboard", "settings", use: showSettings)
        routes.put("api", "v1", "leaderboard", "settings", use: updateSettings)
    }

    private func showNames(_ req: Request, clientID: UUID) async throws -> Bool {
        try await TrainingSettings.find(clientID, on: req.db)?.leaderboardShowNames ?? true
    }

    @Sendable func show(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.takeTraining)
        let page = try PageParams(from: req)
        var errors = FieldErrors()
        let period = errors.oneOf(req.queryText("period"), field: "period", allowed: LeaderboardService.periods) ?? "all"
        let by = errors.oneOf(req.queryText("by"), field: "by", allowed: ["person", "department"]) ?? "person"
        try errors.throwIfAny()
        let client = try await scope.actingClient()
        let service = LeaderboardService(db: req.db, now: req.now)
        if by == "department" {
            let entries = try await service.departments(clientID: client.id!, period: period)
            return try req.envelope(Array(entries.dropFirst(page.offset).prefix(page.perPage)),
                                    pagination: PaginationMeta(page: page.page, perPage: page.perPage, total: entries.count))
        }
        let entries = try await service.people(clientID: client.id!, period: period, showNames: try await showNames(req, clientID: client.id!))
        return try req.envelope(Array(entries.dropFirst(page.offset).prefix(page.perPage)),
                                pagination: PaginationMeta(page: page.page, perPage: page.perPage, total: entries.count))
    }

    @Sendable func showSettings(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageTraining)
        let client = try await scope.actingClient()
        return try req.envelope(SettingsBody(showNames: try await showNames(req, clientID: client.id!)))
    }

    @Sendable func updateSettings(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageTraining)
        let input = try req.decodeBody(SettingsBody.self)
        guard let showNames = input.showNames else { throw APIError.validation(["show_names": ["The show_names field is required."]]) }
        let client = try await scope.actingClient()
        let settings = try await TrainingSettings.find(client.id, on: req.db) ?? {
            let created = TrainingSettings()
            created.id = client.id
            return created
        }()
        settings.leaderboardShowNames = showNames
        let actor = req.auditActor
        let now = req.now
        try await req.db.transaction { db in
            try await settings.save(on: db)
            try await AuditService(db: db, now: now).record(
                AuditEvent("leaderboard.settings_updated", target: ("client", client.id), companyID: client.$company.id,
                           clientID: client.id, details: ["show_names": .bool(showNames)]), by: actor)
        }
        return try req.envelope(SettingsBody(showNames: showNames))
    }
}
