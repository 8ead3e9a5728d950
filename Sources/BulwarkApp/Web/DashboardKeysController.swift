import Fluent
import Vapor

/// API keys page: list, create (the key is shown once), revoke.
struct DashboardKeysController: RouteCollection {
    struct KeyRow: Encodable {
        let name: String
        let prefix: String
        let role: String
        let status: String
        let lastUsedAt: String
        let revokePath: String
    }

    struct KeysPage: Encodable {
        let layout: Layout
        let keys: [KeyRow]
        let newKey: String?
        let errors: [FormError]
        let createAction = DashboardPath.apiKeys
    }

    func boot(routes: any RoutesBuilder) throws {
        let keys = routes.grouped(DashboardGuard()).grouped("api-keys")
        keys.get(use: list)
        keys.post(use: create)
        keys.post(":id", "revoke", use: revoke)
    }

    private func page(_ req: Request, newKey: String? = nil, errors: [FormError] = [], status: HTTPStatus = .ok) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageApiKeys)
        let client = try await scope.actingClient()
        let keys = try await APIKey.query(on: req.db).filter(\.$client.$id == client.id!)
            .sort(\.$createdAt, .descending).limit(100).all()
        let rows = keys.map {
            KeyRow(name: $0.name, prefix: $0.prefix, role: $0.role.displayName, status: $0.revokedAt == nil ? "active" : "revoked",
                   lastUsedAt: $0.lastUsedAt.map(ISO8601.string) ?? "never", revokePath: DashboardPath.apiKeyRevoke($0.id!.uuidString))
        }
        return try await req.page("api-keys", KeysPage(layout: Layout(title: "API keys", principal: scope.principal, req: req),
                                                       keys: rows, newKey: newKey, errors: errors), status: status)
    }

    @Sendable func list(req: Request) async throws -> Response {
        try await page(req)
    }

    @Sendable func create(req: Request) async throws -> Response {
        struct Form: Decodable { var name: String? }
        let scope = try req.scope()
        try scope.require(.manageApiKeys)
        var errors = FieldErrors()
        let name = errors.required(try req.content.decode(Form.self).name, field: "name", maxLength: 100)
        guard let name else { return try await page(req, errors: FormError.from(APIError.validation(errors.details)) ?? [], status: .unprocessableEntity) }
        let client = try await scope.actingClient()
        let created = try await APIKeyService(db: req.db, now: req.now).create(
            name: name, role: scope.principal.role, owner: scope.principal.user, companyID: client.$company.id,
            clientID: client.id, actor: req.auditActor)
        return try await page(req, newKey: created.secret)
    }

    @Sendable func revoke(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageApiKeys)
        let client = try await scope.actingClient()
        guard let id = req.parameters.get("id").flatMap(UUID.init(uuidString:)),
              let key = try await APIKey.query(on: req.db).filter(\.$id == id).filter(\.$client.$id == client.id!).first() else {
            throw APIError.notFound("API key")
        }
        try await APIKeyService(db: req.db, now: req.now).revoke(key, actor: req.auditActor)
        return req.redirect(to: DashboardPath.apiKeys + "?notice=key_revoked")
    }
}
