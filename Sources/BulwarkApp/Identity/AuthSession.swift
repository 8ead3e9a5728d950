import Fluent
import Vapor

/// A sign-in. Its id is the `jti` of the bearer token and of the session cookie, so logout revokes both.
final class AuthSession: Model, @unchecked Sendable {
    static let schema = "auth_sessions"

    @ID(key: .id) var id: UUID?
    @Parent(key: "user_id") var user: User
    @Field(key: "expires_at") var expiresAt: Date
    @OptionalField(key: "revoked_at") var revokedAt: Date?
    @OptionalField(key: "ip") var ip: String?
    @OptionalField(key: "user_agent") var userAgent: String?
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?

    init() {}

    init(userID: UUID, expiresAt: Date, ip: String?, userAgent: String?) {
        self.$user.id = userID
        self.expiresAt = expiresAt
        self.ip = ip
        self.userAgent = userAgent
    }
}

/// An API key. Only its SHA-256 hash is stored; the prefix lets people recognise it in lists.
final class APIKey: Model, @unchecked Sendable {
    static let schema = "api_keys"

    @ID(key: .id) var id: UUID?
    @Parent(key: "company_id") var company: Company
    @OptionalParent(key: "client_id") var client: Client?
    @Parent(key: "user_id") var user: User
    @Field(key: "name") var name: String
    @Field(key: "prefix") var prefix: String
    @Field(key: "key_hash") var keyHash: String
    @Enum(key: "role") var role: Role
    @OptionalField(key: "last_used_at") var lastUsedAt: Date?
    @OptionalField(key: "revoked_at") var revokedAt: Date?
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?

    init() {}
}

struct CreateAuthSessionsAndAPIKeys: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(AuthSession.schema)
            .id()
            .field("user_id", .uuid, .required, .references(User.schema, .id, onDelete: .cascade))
            .field("expires_at", .datetime, .required)
            .field("revoked_at", .datetime)
            .field("ip", .string)
            .field("user_agent", .string)
            .field("created_at", .datetime)
            .create()
        try await database.createIndex(on: AuthSession.schema, name: "auth_sessions_user_id_idx", columns: ["user_id"])
        let role = try await database.enum("user_role").read()
        try await database.schema(APIKey.schema)
            .id()
            .field("company_id", .uuid, .required, .references(Company.schema, .id, onDelete: .cascade))
            .field("client_id", .uuid, .references(Client.schema, .id, onDelete: .cascade))
            .field("user_id", .uuid, .required, .references(User.schema, .id, onDelete: .cascade))
            .field("name", .string, .required)
            .field("prefix", .string, .required)
            .field("key_hash", .string, .required)
            .field("role", role, .required)
            .field("last_used_at", .datetime)
            .field("revoked_at", .datetime)
            .field("created_at", .datetime)
            .unique(on: "key_hash")
            .create()
        try await database.createIndex(on: APIKey.schema, name: "api_keys_company_client_idx", columns: ["company_id", "client_id"])
        try await database.createIndex(on: APIKey.schema, name: "api_keys_user_id_idx", columns: ["user_id"])
    }

    func revert(on database: any Database) async throws {
        try await database.schema(APIKey.schema).delete()
        try await database.schema(AuthSession.schema).delete()
    }
}
