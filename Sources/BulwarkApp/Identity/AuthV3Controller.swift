import Fluent
import Vapor

/// Seed 002: /api/v3/auth/user and /api/v3/auth/logout-user.
struct AuthV3Controller: RouteCollection {
    struct RoleRef: Encodable { let id: String; let name: String; let displayName: String }
    struct CompanyRef: Encodable { let id: UUID; let name: String; let subscriptionStatus: String }
    struct AuthUser: Encodable {
        let id: UUID
        let name: String
        let email: String
        let role: RoleRef
        let company: CompanyRef
        let permissions: [String]
        @Nullable var currentClientId: UUID?
    }

    func boot(routes: any RoutesBuilder) throws {
        let auth = routes.grouped("api", "v3", "auth")
        auth.get("user", use: user)
        // The seed names no method for logout-user: both are accepted.
        auth.post("logout-user", use: logout)
        auth.get("logout-user", use: logout)
    }

    @Sendable func user(req: Request) async throws -> Response {
        let principal = try req.principal()
        guard let company = try await req.application.recordCache.find(Company.self, principal.companyID, on: req.db) else {
            throw APIError.notFound("Company")
        }
        let currentClient = principal.boundClientID ?? principal.user.$currentClient.id ?? principal.user.$client.id
        return try req.envelope(AuthUser(
            id: principal.userID, name: principal.user.fullName, email: principal.user.email,
            role: RoleRef(id: principal.role.id, name: principal.role.rawValue, displayName: principal.role.displayName),
            company: CompanyRef(id: company.id!, name: company.name, subscriptionStatus: company.subscriptionStatus),
            permissions: principal.permissionNames, currentClientId: currentClient))
    }

    @Sendable func logout(req: Request) async throws -> Response {
        let principal = try req.principal()
        // Browsers send the session cookie on any top-level GET, so another site could sign people out with a link.
        if req.method == .GET, principal.viaCookie {
            throw APIError.forbidden("Log out with POST, or with the bearer token in the Authorization header.")
        }
        try await req.authService.logout(principal, actor: req.auditActor)
        return try req.message("User logged out successfully")
    }
}
