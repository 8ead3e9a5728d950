import Fluent
import Vapor

/// Resolves the request's credential to a `Principal`. A missing or invalid credential leaves the request
/// anonymous; routes that need a principal answer 401 through `Request.principal()`.
struct PrincipalAuthenticator: AsyncMiddleware {
    static let cookieName = "bulwark_session"
    static let apiKeyPrefix = "bwk_"

    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        if let principal = await resolve(request) {
            request.auth.login(principal)
        }
        return try await next.respond(to: request)
    }

    private func resolve(_ request: Request) async -> Principal? {
        if let bearer = request.headers.bearerAuthorization?.token {
            if bearer.hasPrefix(Self.apiKeyPrefix) { return await apiKeyPrincipal(bearer, request) }
            return await tokenPrincipal(bearer, request)
        }
        if let cookie = request.cookies[Self.cookieName]?.string {
            return await tokenPrincipal(cookie, request)
        }
        return nil
    }

    private func tokenPrincipal(_ token: String, _ request: Request) async -> Principal? {
        if let session = await request.tokens.session(for: token) {
            let user = session.user
            guard user.isActive else { return nil }
            return Principal(user: user, role: user.role, credential: .session(session.id!), boundClientID: nil)
        }
        guard let verifier = request.application.oidcVerifier,
              let payload = try? await verifier.verify(token, now: request.now),
              let email = payload.email?.lowercased(),
              let user = try? await User.query(on: request.db).filter(\.$email == email).first(),
              user.isActive else { return nil }
        return Principal(user: user, role: user.role, credential: .external(subject: payload.sub.value), boundClientID: nil)
    }

    private func apiKeyPrincipal(_ key: String, _ request: Request) async -> Principal? {
        let hash = RandomToken.sha256Hex(key)
        guard let apiKey = try? await APIKey.query(on: request.db).filter(\.$keyHash == hash)
                .filter(\.$revokedAt == nil).with(\.$user).first(),
              apiKey.user.isActive else { return nil }
        // Recording use is best effort: a failed timestamp write must not fail the caller's request.
        try? await APIKey.query(on: request.db).filter(\.$id == apiKey.id!).set(\.$lastUsedAt, to: request.now).update()
        let role = apiKey.role.rank <= apiKey.user.role.rank ? apiKey.role : apiKey.user.role
        return Principal(user: apiKey.user, role: role, credential: .apiKey(apiKey.id!), boundClientID: apiKey.$client.id)
    }
}
