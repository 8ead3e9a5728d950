import Fluent
import Vapor

/// Seed 002: GET /api/v4/users, every user the caller may see.
struct UsersV4Controller: RouteCollection {
    struct RoleRef: Encodable { let name: String; let displayName: String }
    struct CompanyRef: Encodable { let id: UUID; let name: String }
    struct UserV4: Encodable {
        let id: UUID
        let name: String
        let email: String
        let role: RoleRef
        let company: CompanyRef
        let status: String
        let createdAt: Date?
    }

    func boot(routes: any RoutesBuilder) throws {
        routes.get("api", "v4", "users", use: list)
    }

    @Sendable func list(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.viewUsers)
        var errors = FieldErrors()
        let page = try PageParams(from: req)
        let role = errors.oneOf(req.queryText("role"), field: "role", allowed: Role.allCases.map(\.rawValue)).flatMap(Role.init)
        let companyID = errors.uuid(req.queryText("company_id"), field: "company_id")
        try errors.throwIfAny(from: .query)
        let query = scope.reachableUsers().with(\.$company)
        if let role { query.filter(\.$role == role) }
        if let companyID { query.filter(\.$company.$id == companyID) }
        let keyset = Keyset<User>(columns: [("created_at", { .time(($0.createdAt ?? .distantPast).timeIntervalSinceReferenceDate) }),
                                            ("id", { .id($0.id!) })], descending: false)
        let (users, meta) = try await query.pageOfModels(page, keyset: keyset, cursor: try keyset.cursor(from: req))
        let items = users.map { user in
            UserV4(id: user.id!, name: user.fullName, email: user.email,
                   role: RoleRef(name: user.role.rawValue, displayName: user.role.displayName),
                   company: CompanyRef(id: user.company.id!, name: user.company.name),
                   status: user.isActive ? "Active" : "Inactive", createdAt: user.createdAt)
        }
        return try req.envelope(items, pagination: meta)
    }
}
