import Fluent
import Vapor

/// Resolves the request's credential to a `Principal`. A missing or invalid credential leaves the request
/// anonymous; routes that need a principal answer 401 through `Request.principal()`.
struct PrincipalAuthenticator: AsyncMiddleware {
    static let cookieName = "bulwark_session"
    static let apiKeyPrefix = "bwk_"

    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        // A database that cannot be reached fails the request (503), never turns it anonymous (401).
        if let principal = try await resolve(request) {
            if principal.viaCookie, !CrossSiteCheck.allows(request, principal: principal) {
                // Public routes still work; routes that need the principal answer 403 through `Request.principal()`.
                request.crossSiteRefused = true
            } else {
                request.auth.login(principal)
            }
            // Someone signed in may read results: they include every tracking event answered before this request.
            await request.application.trackingWriter.caughtUp()
        }
        return try await next.respond(to: request)
    }

    /// A principal confined to a client must have one: client-bound roles without a client reach nothing.
    private func resolve(_ request: Request) async throws -> Principal? {
        guard let principal = try await credentialPrincipal(request) else { return nil }
        if !principal.isCompanyWide, principal.confinedClientID == nil { return nil }
        return principal
    }

    /// `Authorization: Bearer <token>` as Vapor's `bearerAuthorization` reads it (two words between any spaces, the
    /// scheme in any case), without splitting the header into an array of substrings on every request.
    /// Read byte by byte: splitting and lowercasing the scheme cost 4% of an authenticated request.
    static func bearerToken(_ headers: HTTPHeaders) -> String? {
        guard let value = headers.first(name: .authorization) else { return nil }
        let bytes = value.utf8
        let space = UInt8(ascii: " ")
        var index = bytes.startIndex
        while index != bytes.endIndex, bytes[index] == space { index = bytes.index(after: index) }
        for letter in "bearer".utf8 {
            // Letters only: `| 0x20` lowercases an ASCII letter and turns no other byte into one.
            guard index != bytes.endIndex, bytes[index] | 0x20 == letter else { return nil }
            index = bytes.index(after: index)
        }
        guard index != bytes.endIndex, bytes[index] == space else { return nil }
        while index != bytes.endIndex, bytes[index] == space { index = bytes.index(after: index) }
        let start = index
        while index != bytes.endIndex, bytes[index] != space { index = bytes.index(after: index) }
        let end = index
        guard end != start, bytes[end...].allSatisfy({ $0 == space }) else { return nil }
        return String(Substring(bytes[start..<end]))
    }

    private func credentialPrincipal(_ request: Request) async throws -> Principal? {
        if let bearer = Self.bearerToken(request.headers) {
            if bearer.hasPrefix(Self.apiKeyPrefix) { return try await apiKeyPrincipal(bearer, request) }
            return try await tokenPrincipal(bearer, request, viaCookie: false)
        }
        if let cookie = request.cookies[Self.cookieName]?.string, !cookie.isEmpty {
            return try await tokenPrincipal(cookie, request, viaCookie: true)
        }
        return nil
    }

    private func tokenPrincipal(_ token: String, _ request: Request, viaCookie: Bool) async throws -> Principal? {
        let cache = request.application.credentialCache
        let cacheKey = "t:" + RandomToken.sha256Hex(token)
        if var principal = cache.principal(for: cacheKey, now: request.now) {
            principal.viaCookie = viaCookie
            return principal
        }
        let generation = cache.generation
        if let session = try await request.tokens.session(for: token) {
            let user = session.user
            guard user.isActive else { return nil }
            let principal = Principal(user: user, credential: .session(session.id!), viaCookie: viaCookie)
            cache.store(principal, for: cacheKey, validUntil: session.expiresAt, generation: generation)
            return principal
        }
        guard let verifier = request.application.oidcVerifier,
              let payload = try? await verifier.verify(token, now: request.now) else { return nil }
        let tokenHash = RandomToken.sha256Hex(token)
        guard try await RevokedTokens.isRevoked(tokenHash: tokenHash, db: request.db) == false,
              let user = try await ExternalSignIn(db: request.db, settings: verifier.settings).user(for: payload) else {
            return nil
        }
        return Principal(user: user, credential: .external(issuer: payload.iss.value, subject: payload.sub.value,
                                                           tokenHash: tokenHash, expiresAt: payload.exp.value),
                         viaCookie: viaCookie)
    }

    /// `last_used_at` is written when the key is looked up, not on cache hits: it is exact to within the cache's
    /// lifetime, and a busy key costs no write per request.
    private func apiKeyPrincipal(_ key: String, _ request: Request) async throws -> Principal? {
        let hash = RandomToken.sha256Hex(key)
        let cache = request.application.credentialCache
        let cacheKey = "k:" + hash
        if let principal = cache.principal(for: cacheKey, now: request.now) { return principal }
        let generation = cache.generation
        guard let apiKey = try await APIKey.query(on: request.db).filter(\.$keyHash == hash)
                .filter(\.$revokedAt == nil).with(\.$user).first(),
              apiKey.user.isActive else { return nil }
        // Recording use is best effort: a failed timestamp write must not fail the caller's request.
        try? await APIKey.query(on: request.db).filter(\.$id == apiKey.id!).set(\.$lastUsedAt, to: request.now).update()
        guard let principal = Principal(apiKey: apiKey, owner: apiKey.user) else { return nil }
        cache.store(principal, for: cacheKey, validUntil: .distantFuture, generation: generation)
        return principal
    }
}

/// A browser sends the session cookie with requests other sites make it send. A state-changing API call authenticated
/// by the cookie alone therefore needs proof it comes from Bulwark's own pages: the CSRF token in `X-CSRF-Token`, or an
/// `Origin` that is this server's.
enum CrossSiteCheck {
    static let header = "X-CSRF-Token"

    static func allows(_ request: Request, principal: Principal) -> Bool {
        guard ![.GET, .HEAD, .OPTIONS].contains(request.method), request.routeFamily != .other else {
            return true
        }
        if let sent = request.headers.first(name: header), CSRF.matches(sent, principal: principal, app: request.application) {
            return true
        }
        guard let origin = request.headers.first(name: .origin), origin != "null" else { return false }
        return isSameOrigin(origin, request: request)
    }

    static func isSameOrigin(_ origin: String, request: Request) -> Bool {
        let trimmed = origin.hasSuffix("/") ? String(origin.dropLast()) : origin
        if let publicOrigin = Self.origin(of: request.application.settings.publicBaseURL), trimmed.lowercased() == publicOrigin {
            return true
        }
        guard let host = request.headers.first(name: .host)?.lowercased(),
              let url = URL(string: trimmed), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
              let originHost = url.host?.lowercased() else { return false }
        let originAuthority = url.port.map { "\(originHost):\($0)" } ?? originHost
        return originAuthority == host
    }

    /// `scheme://host[:port]` of an absolute URL, lowercased.
    static func origin(of urlText: String) -> String? {
        guard let url = URL(string: urlText), let scheme = url.scheme?.lowercased(), let host = url.host?.lowercased() else {
            return nil
        }
        return "\(scheme)://\(host)" + (url.port.map { ":\($0)" } ?? "")
    }
}

extension Request {
    private struct CrossSiteRefusedKey: StorageKey { typealias Value = Bool }

    /// Set when a cookie-authenticated state-changing call came without the CSRF token or a same-origin Origin.
    var crossSiteRefused: Bool {
        get { storage[CrossSiteRefusedKey.self] ?? false }
        set { storage[CrossSiteRefusedKey.self] = newValue }
    }
}
