import Fluent
import JWTKit
import Vapor

/// Payload of tokens Bulwark issues. `jti` is the id of the `AuthSession` row that makes it revocable.
struct BulwarkTokenPayload: JWTPayload {
    var iss: IssuerClaim
    var sub: SubjectClaim
    var jti: IDClaim
    var iat: IssuedAtClaim
    var exp: ExpirationClaim

    // Expiry is checked against the app's clock (and the session row) by TokenService, not the wall clock here.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Issues and verifies Bulwark's own JWTs (HS256, 24 h, revocable).
struct TokenService: Sendable {
    static let issuer = "bulwark"
    let keys: JWTKeyCollection
    let db: any Database
    let now: Date
    let lifetime: TimeInterval

    func issue(for user: User, ip: String?, userAgent: String?) async throws -> (token: String, session: AuthSession) {
        let session = AuthSession(userID: user.id!, expiresAt: now.addingTimeInterval(lifetime), ip: ip,
                                  userAgent: userAgent.map { String($0.prefix(500)) })
        try await session.create(on: db)
        let payload = BulwarkTokenPayload(
            iss: .init(value: Self.issuer), sub: .init(value: user.id!.uuidString),
            jti: .init(value: session.id!.uuidString), iat: .init(value: now), exp: .init(value: session.expiresAt))
        return (try await keys.sign(payload, kid: "bulwark"), session)
    }

    /// The live session behind a token, or nil when the token is forged, expired or revoked. A database error is
    /// thrown, not taken for "no session".
    func session(for token: String) async throws -> AuthSession? {
        guard let payload = try? await keys.verify(token, as: BulwarkTokenPayload.self),
              payload.iss.value == Self.issuer, payload.exp.value > now,
              let id = UUID(uuidString: payload.jti.value),
              let session = try await AuthSession.query(on: db).filter(\.$id == id).with(\.$user).first(),
              session.revokedAt == nil, session.expiresAt > now,
              session.user.id?.uuidString == payload.sub.value else { return nil }
        return session
    }

    func revoke(sessionID: UUID) async throws {
        try await AuthSession.query(on: db).filter(\.$id == sessionID).set(\.$revokedAt, to: now).update()
    }
}

extension Application {
    private struct BulwarkKeysKey: StorageKey { typealias Value = JWTKeyCollection }

    /// Signing keys of Bulwark's own tokens, set up in configure.
    var bulwarkKeys: JWTKeyCollection {
        get { storage[BulwarkKeysKey.self]! }
        set { storage[BulwarkKeysKey.self] = newValue }
    }
}

extension Request {
    var tokens: TokenService {
        TokenService(keys: application.bulwarkKeys, db: db, now: now, lifetime: application.settings.tokenLifetime)
    }
}
