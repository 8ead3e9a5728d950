import Fluent
import Vapor

/// /api/v1/api-keys: keys bound to the acting client (or, for company-wide staff, to the whole company).
struct APIKeysController: RouteCollection {
    struct Input: Decodable { var name: String?; var role: String?; var companyWide: Bool? }

    func boot(routes: any RoutesBuilder) throws {
        let keys = routes.grouped("api", "v1", "api-keys")
        keys.get(use: list)
        keys.post(use: create)
        keys.delete(":id", use: revoke)
    }

    /// Keys of the acting client, plus company-wide keys for company-wide staff.
    private func keys(_ scope: Scope, client: Client) -> QueryBuilder<APIKey> {
        let query = APIKey.query(on: scope.db).filter(\.$company.$id == client.$company.id)
        if scope.principal.confinedClientID == nil {
            return query.group(.or) { $0.filter(\.$client.$id == client.id!).filter(\.$client.$id == nil) }
        }
        return query.filter(\.$client.$id == client.id!)
    }

    @Sendable func list(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageApiKeys)
        let page = try PageParams(from: req)
        let client = try await scope.actingClient()
        let (items, meta) = try await keys(scope, client: client).sort(\.$createdAt, .descending).sort(\.$id).pageOfModels(page)
        return try req.envelope(items.map { APIKeyResponse($0) }, pagination: meta)
    }

    @Sendable func create(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageApiKeys)
        let input = try req.decodeBody(Input.self)
        var errors = FieldErrors()
        let name = errors.required(input.name, field: "name", maxLength: 100)
        let role = errors.oneOf(input.role, field: "role", allowed: Role.allCases.map(\.rawValue)).flatMap(Role.init)
        if input.companyWide == true, scope.principal.confinedClientID != nil {
            errors.add("company_wide", "Only company-wide staff can create company-wide keys.")
        }
        try errors.throwIfAny()
        let keyRole = role ?? scope.principal.role
        if keyRole.rank > scope.principal.role.rank { throw APIError.forbidden("A key cannot have a role above yours.") }
        let client = try await scope.actingClient()
        let created = try await APIKeyService(db: req.db, now: req.now).create(
            name: name!, role: keyRole, owner: scope.principal.user, companyID: client.$company.id,
            clientID: input.companyWide == true ? nil : client.id, actor: req.auditActor)
        return try req.envelope(APIKeyResponse(created.key, secret: created.secret), status: .created)
    }

    @Sendable func revoke(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageApiKeys)
        let client = try await scope.actingClient()
        guard let id = req.parameters.get("id").flatMap(UUID.init(uuidString:)),
              let key = try await keys(scope, client: client).filter(\.$id == id).first() else {
            throw APIError.notFound("API key")
        }
        try await APIKeyService(db: req.db, now: req.now).revoke(key, actor: req.auditActor)
        return try req.envelope(APIKeyResponse(key))
    }
}
