import JWTKit
import NIOConcurrencyHelpers
import Vapor

/// Claims read from an external OpenID Connect provider's ID or access token.
struct OIDCPayload: JWTPayload {
    var iss: IssuerClaim
    var sub: SubjectClaim
    var aud: AudienceClaim
    var exp: ExpirationClaim
    var email: String?
    /// Some issuers send the claim as a string ("true"); only an explicit true counts.
    var emailVerified: Bool?

    enum CodingKeys: String, CodingKey {
        case iss, sub, aud, exp, email
        case emailVerified = "email_verified"
    }

    init(iss: IssuerClaim, sub: SubjectClaim, aud: AudienceClaim, exp: ExpirationClaim, email: String?, emailVerified: Bool?) {
        self.iss = iss
        self.sub = sub
        self.aud = aud
        self.exp = exp
        self.email = email
        self.emailVerified = emailVerified
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        iss = try container.decode(IssuerClaim.self, forKey: .iss)
        sub = try container.decode(SubjectClaim.self, forKey: .sub)
        aud = try container.decode(AudienceClaim.self, forKey: .aud)
        exp = try container.decode(ExpirationClaim.self, forKey: .exp)
        email = try container.decodeIfPresent(String.self, forKey: .email)
        if let flag = try? container.decodeIfPresent(Bool.self, forKey: .emailVerified) {
            emailVerified = flag
        } else {
            emailVerified = (try? container.decodeIfPresent(String.self, forKey: .emailVerified))?.lowercased() == "true"
        }
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// Verifies tokens of an external issuer against its JWKS, fetched on first use and again when a token names
/// a key id not yet seen (key rotation), at most once a minute.
actor OIDCVerifier {
    let settings: Settings.OIDCSettings
    let client: any Vapor.Client
    private var keys: JWTKeyCollection?
    private var fetchedAt: Date?

    init(settings: Settings.OIDCSettings, client: any Vapor.Client) {
        self.settings = settings
        self.client = client
    }

    func verify(_ token: String, now: Date) async throws -> OIDCPayload? {
        if let payload = try? await verifyWithCurrentKeys(token, now: now) { return payload }
        if let fetchedAt, now.timeIntervalSince(fetchedAt) < 60, keys != nil { return nil }
        try await refreshKeys(now: now)
        return try? await verifyWithCurrentKeys(token, now: now)
    }

    private func verifyWithCurrentKeys(_ token: String, now: Date) async throws -> OIDCPayload? {
        guard let keys else { return nil }
        let payload = try await keys.verify(token, as: OIDCPayload.self)
        guard payload.iss.value == settings.issuer, payload.aud.value.contains(settings.audience),
              payload.exp.value > now else { return nil }
        return payload
    }

    private func refreshKeys(now: Date) async throws {
        let response = try await client.get(URI(string: settings.jwksURL))
        guard response.status == .ok, let body = response.body else { return }
        let collection = JWTKeyCollection()
        try await collection.add(jwksJSON: String(buffer: body))
        keys = collection
        fetchedAt = now
    }
}

extension Application {
    private struct OIDCVerifierKey: StorageKey { typealias Value = OIDCVerifier }

    var oidcVerifier: OIDCVerifier? {
        get { storage[OIDCVerifierKey.self] }
        set { storage[OIDCVerifierKey.self] = newValue }
    }
}
