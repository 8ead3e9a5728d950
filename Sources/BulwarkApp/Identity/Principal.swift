import Vapor

/// Who is calling, resolved from a session cookie, a Bulwark JWT, an external OIDC token or an API key.
struct Principal: Authenticatable, Sendable {
    enum Credential: Sendable, Equatable {
        case session(UUID)
        case apiKey(UUID)
        case external(subject: String)
    }

    let user: User
    let role: Role
    let credential: Credential
    /// Set when an API key is bound to one client: it always acts on that client.
    let boundClientID: UUID?

    var userID: UUID { user.id! }
    var companyID: UUID { user.$company.id }

    /// The single client this principal is confined to, or nil for company-wide reach.
    var confinedClientID: UUID? {
        if let boundClientID { return boundClientID }
        return role.isCompanyWide ? nil : user.$client.id
    }

    var rateLimitKey: String {
        if case let .apiKey(id) = credential { return "key:\(id)" }
        return "user:\(userID)"
    }

    func has(_ permission: Permission) -> Bool { role.has(permission) }

    func require(_ permission: Permission) throws {
        guard has(permission) else { throw APIError.forbidden() }
    }
}

extension Request {
    /// The authenticated principal, or 401.
    func principal() throws -> Principal {
        guard let principal = auth.get(Principal.self) else { throw APIError.unauthorized() }
        return principal
    }

    /// The tenant scope of the caller: the one place queries are confined to what the caller may see.
    func scope() throws -> Scope {
        Scope(principal: try principal(), db: db, requestedClientID: headers.first(name: "X-Client-Id"))
    }
}
