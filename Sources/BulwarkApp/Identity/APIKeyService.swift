import Fluent
import Vapor

/// API keys: created with the secret shown once, listed by prefix, revoked.
struct APIKeyService: Sendable {
    let db: any Database
    let now: Date

    struct Created: Sendable {
        let key: APIKey
        let secret: String
    }

    func create(name: String, role: Role, owner: User, companyID: UUID, clientID: UUID?, actor: AuditActor) async throws -> Created {
        let secret = PrincipalAuthenticator.apiKeyPrefix + RandomToken.make(bytes: 32)
        let key = APIKey()
        key.$company.id = companyID
        key.$client.id = clientID
        key.$user.id = owner.id!
        key.name = name
        key.prefix = String(secret.prefix(12))
        key.keyHash = RandomToken.sha256Hex(secret)
        key.role = role
        let now = self.now
        try await db.transaction { db in
            try await key.create(on: db)
            try await AuditService(db: db, now: now).record(
                AuditEvent("api_key.created", target: ("api_key", key.id), companyID: companyID, clientID: clientID,
                           details: ["name": .string(name), "prefix": .string(key.prefix), "role": .string(role.rawValue)]),
                by: actor)
        }
        return Created(key: key, secret: secret)
    }

    func revoke(_ key: APIKey, actor: AuditActor) async throws {
        guard key.revokedAt == nil else { return }
        let now = self.now
        try await db.transaction { db in
            key.revokedAt = now
            try await key.save(on: db)
            try await AuditService(db: db, now: now).record(
                AuditEvent("api_key.revoked", target: ("api_key", key.id), companyID: key.$company.id, clientID: key.$client.id),
                by: actor)
        }
    }
}

struct APIKeyResponse: Encodable, Sendable {
    let id: UUID
    let name: String
    let prefix: String
    let role: String
    @Nullable var clientId: UUID?
    @Nullable var lastUsedAt: Date?
    @Nullable var revokedAt: Date?
    let status: String
    let createdAt: Date?
    /// Present only in the response to creation: the one time the secret is shown.
    var key: String?

    init(_ key: APIKey, secret: String? = nil) {
        id = key.id!
        name = key.name
        prefix = key.prefix
        role = key.role.rawValue
        clientId = key.$client.id
        lastUsedAt = key.lastUsedAt
        revokedAt = key.revokedAt
        status = key.revokedAt == nil ? "active" : "revoked"
        createdAt = key.createdAt
        self.key = secret
    }
}
