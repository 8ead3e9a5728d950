import Vapor

/// Who is calling, resolved from a session cookie, a Bulwark JWT, an external OIDC token or an API key.
struct Principal: Authenticatable, Sendable {
    enum Credential: Sendable, Equatable {
        case session(UUID)
        case apiKey(UUID)
        /// A token of an external OpenID Connect issuer; its hash and expiry let logout refuse it until it expires.
        case external(issuer: String, subject: String, tokenHash: String, expiresAt: Date)
    }

    let user: User
    /// The role it acts with: the user's own, or for an API key the lower of the key's role and its owner's current one.
    let role: Role
    /// What it may do. For an API key: the key role's permissions that its owner still has now, so demoting the owner
    /// takes the rights away from every key they made.
    let permissions: Set<Permission>
    /// Reaches every client of the company (MSP staff), not only its own.
    let isCompanyWide: Bool
    let credential: Credential
    /// Set when an API key is bound to one client: it always acts on that client.
    let boundClientID: UUID?
    /// The credential came from the session cookie alone (no Authorization header): state-changing API calls then
    /// need the CSRF token or a same-origin Origin.
    var viaCookie = false

    /// A signed-in person acting with their own role.
    init(user: User, credential: Credential, viaCookie: Bool = false) {
        self.user = user
        role = user.role
        permissions = Set(user.role.permissions)
        isCompanyWide = user.role.isCompanyWide
        self.credential = credential
        boundClientID = nil
        self.viaCookie = viaCookie
    }

    /// An API key: never more than its owner can do now, and never anywhere its owner can no longer reach. Nil when the
    /// key no longer reaches anything (bound to a client its owner was moved away from).
    init?(apiKey: APIKey, owner: User) {
        let ownerCompanyWide = owner.role.isCompanyWide
        if !ownerCompanyWide {
            guard let ownClient = owner.$client.id else { return nil }
            if let bound = apiKey.$client.id, bound != ownClient { return nil }
        }
        user = owner
        role = apiKey.role.rank <= owner.role.rank ? apiKey.role : owner.role
        permissions = Set(apiKey.role.permissions).intersection(owner.role.permissions)
        isCompanyWide = apiKey.role.isCompanyWide && ownerCompanyWide
        credential = .apiKey(apiKey.id!)
        boundClientID = apiKey.$client.id
    }

    var userID: UUID { user.id! }
    var companyID: UUID { user.$company.id }

    /// The single client this principal is confined to, or nil for company-wide reach.
    var confinedClientID: UUID? {
        if let boundClientID { return boundClientID }
        return isCompanyWide ? nil : user.$client.id
    }

    var rateLimitKey: String {
        if case let .apiKey(id) = credential { return "key:\(id)" }
        return "user:\(userID)"
    }

    func has(_ permission: Permission) -> Bool { permissions.contains(permission) }

    func require(_ permission: Permission) throws {
        guard has(permission) else { throw APIError.forbidden() }
    }

    /// Permission strings in the role's order, as `/api/v3/auth/user` lists them.
    var permissionNames: [String] { Permission.allCases.filter(permissions.contains).map(\.rawValue) }
}

extension Request {
    /// The authenticated principal, or 401.
    func principal() throws -> Principal {
        guard let principal = auth.get(Principal.self) else {
            if crossSiteRefused {
                throw APIError.forbidden("Cross-site request refused: send the X-CSRF-Token header or call from Bulwark's own origin.")
            }
            throw APIError.unauthorized()
        }
        return principal
    }

    /// The tenant scope of the caller: the one place queries are confined to what the caller may see.
    func scope() throws -> Scope {
        Scope(principal: try principal(), db: db, requestedClientID: headers.first(name: "X-Client-Id"),
              records: application.recordCache)
    }
}
