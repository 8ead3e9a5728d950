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

    private func members(_ req: Request) async throws -> [TeamService.Member] {
        let principal = try req.principal()
        try principal.require(.viewTeam)
        var errors = FieldErrors()
        let depth = errors.oneOf(req.query["depth"], field: "depth", allowed: ["direct", "all"])
        try errors.throwIfAny()
        return try await TeamService(db: req.db, now: req.now).members(of: principal.user, allLevels: depth == "all")
    }

    @Sendable func list(req: Request) async throws -> Response {
        let page = try PageParams(from: req)
        let members = try await members(req)
        let slice = Array(members.dropFirst(page.offset).prefix(page.perPage))
        return try req.envelope(slice, pagination: PaginationMeta(page: page.page, perPage: page.perPage, total: members.count))
    }

    @Sendable func stats(req: Request) async throws -> Response {
        try req.envelope(TeamService(db: req.db, now: req.now).stats(of: try await members(req)))
    }

    @Sendable func export(req: Request) async throws -> Response {
        let members = try await members(req)
        var csv = CSV.line(["name", "email", "department", "position", "depth", "assigned", "completed", "overdue",
                            "completion_rate", "average_score", "status"])
        for member in members {
            csv += CSV.line([member.user.name, member.user.email, member.user.department ?? "", member.user.position ?? "",
                             String(member.depth), String(member.assigned), String(member.completed), String(member.overdue),
                             String(member.completionRate), member.averageScore.map { String($0) } ?? "", member.status])
        }
        var headers = HTTPHeaders()
        headers.contentType = HTTPMediaType(type: "text", subType: "csv", parameters: ["charset": "utf-8"])
        headers.contentDisposition = .init(.attachment, filename: "team-compliance.csv")
        return Response(status: .ok, headers: headers, body: .init(string: csv))
    }

    @Sendable func overdue(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.viewUsers)
        let page = try PageParams(from: req)
        var errors = FieldErrors()
        let department = errors.optional(req.query["department"], field: "department")
        let managerID = errors.uuid(req.query["manager_id"], field: "manager_id")
        try errors.throwIfAny()
        let client = try await scope.actingClient()
        let result = try await OverdueService(db: req.db, now: req.now)
            .list(clientID: client.id!, department: department, managerID: managerID, page: page)
        return try req.envelope(page: result)
    }
}
