import Fluent
import SQLKit
import Vapor

/// A Bulwark account linked to a person at an external OpenID Connect issuer. After the first sign-in the account is
/// found by `(issuer, subject)`, never again by the email claim, which the issuer's users may be able to change.
final class IdentityLink: Model, @unchecked Sendable {
    static let schema = "identity_links"

    @ID(key: .id) var id: UUID?
    @Parent(key: "user_id") var user: User
    @Field(key: "issuer") var issuer: String
    @Field(key: "subject") var subject: String
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?

    init() {}

    init(userID: UUID, issuer: String, subject: String) {
        $user.id = userID
        self.issuer = issuer
        self.subject = subject
    }
}

/// Tokens Bulwark did not issue but was asked to log out: refused until they expire.
enum RevokedTokens {
    static func revoke(tokenHash: String, until expiresAt: Date, db: any Database, now: Date) async throws {
        try await db.sql.raw("""
            INSERT INTO revoked_tokens (token_hash, expires_at) VALUES (\(bind: tokenHash), \(bind: expiresAt))
            ON CONFLICT (token_hash) DO NOTHING
            """).run()
        try await db.sql.raw("DELETE FROM revoked_tokens WHERE expires_at < \(bind: now)").run()
    }

    static func isRevoked(tokenHash: String, db: any Database) async throws -> Bool {
        try await db.sql.raw("SELECT 1 AS hit FROM revoked_tokens WHERE token_hash = \(bind: tokenHash)").first() != nil
    }
}

/// Signs in people by an external issuer's token: by their link, or, on first use, by a verified email within the
/// company that configured the issuer.
struct ExternalSignIn: Sendable {
    let db: any Database
    let settings: Settings.OIDCSettings

    func user(for payload: OIDCPayload) async throws -> User? {
        let issuer = payload.iss.value
        let subject = payload.sub.value
        guard let companyID = try await issuerCompanyID() else { return nil }
        if let link = try await IdentityLink.query(on: db).filter(\.$issuer == issuer).filter(\.$subject == subject)
            .with(\.$user).first() {
            let user = link.user
            return user.$company.id == companyID && user.isActive ? user : nil
        }
        // First use: only a verified email of an active person in that company, and never a super administrator.
        guard payload.emailVerified == true, let email = payload.email?.lowercased(),
              let user = try await User.query(on: db).filter(\.$email == email).filter(\.$company.$id == companyID).first(),
              user.isActive, user.role != .superAdmin else { return nil }
        try await db.sql.raw("""
            INSERT INTO identity_links (id, user_id, issuer, subject, created_at)
            VALUES (\(bind: UUID()), \(bind: user.id!), \(bind: issuer), \(bind: subject), \(bind: Date()))
            ON CONFLICT DO NOTHING
            """).run()
        // One link per person and issuer: a second subject claiming the same verified email is refused. Two first
        // sign-ins at once link once; whoever lost the race signs in only if the winning link is theirs.
        guard let link = try await IdentityLink.query(on: db).filter(\.$issuer == issuer).filter(\.$subject == subject).first(),
              link.$user.id == user.id else { return nil }
        return user
    }

    /// The company the issuer belongs to: the configured one, else the installation's first company.
    private func issuerCompanyID() async throws -> UUID? {
        if let configured = settings.companyID { return configured }
        return try await Company.query(on: db).sort(\.$createdAt).sort(\.$id).first()?.id
    }
}

struct CreateIdentityLinksAndRevokedTokens: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(IdentityLink.schema)
            .id()
            .field("user_id", .uuid, .required, .references(User.schema, .id, onDelete: .cascade))
            .field("issuer", .string, .required)
            .field("subject", .string, .required)
            .field("created_at", .datetime)
            .unique(on: "issuer", "subject")
            .unique(on: "user_id", "issuer")
            .create()
        try await database.createIndex(on: IdentityLink.schema, name: "identity_links_user_id_idx", columns: ["user_id"])
        try await database.schema("revoked_tokens")
            .field("token_hash", .string, .identifier(auto: false))
            .field("expires_at", .datetime, .required)
            .create()
        try await database.createIndex(on: "revoked_tokens", name: "revoked_tokens_expires_at_idx", columns: ["expires_at"])
    }

    func revert(on database: any Database) async throws {
        try await database.schema("revoked_tokens").delete()
        try await database.schema(IdentityLink.schema).delete()
    }
}
