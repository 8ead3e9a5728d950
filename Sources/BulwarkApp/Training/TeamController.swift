import Fluent
import Vapor

/// Seed 000: /api/v1/team, /team/stats, /team/export and /api/v1/users/overdue.
struct TeamController: RouteCollection {
    func boot(routes: any RoutesBuilder) throws {
        let team = routes.grouped("api", "v1", "team")
        team.get(use: list)
        team.get("stats", use: stats)
        team.get("export", use: export)
        routes.get("api", "v1", "users", "overdue", use: overdue)
    }

    private func reports(_ req: Request) async throws -> [(User, Int)] {
        let principal = try req.principal()
        try principal.require(.viewTeam)
        var errors = FieldErrors()
        let depth = errors.oneOf(req.queryText("depth"), field: "depth", allowed: ["direct", "all"])
        try errors.throwIfAny(from: .query)
        return try await TeamService(db: req.db, now: req.now).reports(of: principal.user, allLevels: depth == "all")
    }

    @Sendable func list(req: Request) async throws -> Response {
        let page = try PageParams(from: req)
        let people = try await reports(req)
        let members = try await TeamService(db: req.db, now: req.now)
            .members(for: Array(people.dropFirst(page.offset).prefix(page.perPage)))
        return try req.envelope(members, pagination: PaginationMeta(page: page.page, perPage: page.perPage, total: people.count))
    }

    @Sendable func stats(req: Request) async throws -> Response {
        let service = TeamService(db: req.db, now: req.now)
        return try req.envelope(service.stats(of: try await service.members(for: try await reports(req))))
    }

    /// Streamed like the other exports (CSV or JSON by `format`): figures are computed a page of people at a time.
    @Sendable func export(req: Request) async throws -> Response {
        var errors = FieldErrors()
        let format = ExportStream.Format.parse(req, errors: &errors)
        try errors.throwIfAny(from: .query)
        let people = try await reports(req)
        let service = TeamService(db: req.db, now: req.now)
        let header = ["name", "email", "department", "position", "depth", "assigned", "completed", "overdue",
                      "completion_rate", "average_score", "status"]
        return ExportStream.response(
            app: req.application, format: format, filename: "team-compliance", header: header,
            csvLine: { (member: TeamService.Member, line: inout CSV.Writer) in
                line.text(member.user.name); line.text(member.user.email); line.text(member.user.department)
                line.text(member.user.position); line.number(member.depth); line.number(member.assigned)
                line.number(member.completed); line.number(member.overdue); line.text(String(member.completionRate))
                line.text(member.averageScore.map { String($0) }); line.text(member.status)
            },
            keyStyle: req.keyStyle,
            nextPage: { after in
                let start = after.flatMap(Int.init) ?? 0
                let end = min(start + ExportsController.pageSize, people.count)
                guard start < end else { return ([], nil) }
                return (try await service.members(for: Array(people[start..<end])), String(end))
            })
    }

    @Sendable func overdue(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.viewUsers)
        let page = try PageParams(from: req)
        var errors = FieldErrors()
        let department = errors.optional(req.queryText("department"), field: "department")
        let managerID = errors.uuid(req.queryText("manager_id"), field: "manager_id")
        try errors.throwIfAny(from: .query)
        let client = try await scope.actingClient()
        let result = try await OverdueService(db: req.db, now: req.now)
            .list(clientID: client.id!, department: department, managerID: managerID, page: page)
        return try req.envelope(page: result)
    }
}
