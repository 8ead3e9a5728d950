import Fluent
import Vapor

/// One audit record. Entries form a hash chain per client (or per company / the system when no client applies).
final class AuditEntry: Model, @unchecked Sendable {
    static let schema = "audit_entries"

    @ID(key: .id) var id: UUID?
    @Field(key: "chain_key") var chainKey: String
    @Field(key: "seq") var seq: Int
    @OptionalField(key: "company_id") var companyID: UUID?
    @OptionalField(key: "client_id") var clientID: UUID?
    @OptionalField(key: "actor_id") var actorID: UUID?
    @OptionalField(key: "actor_email") var actorEmail: String?
    @Field(key: "action") var action: String
    @OptionalField(key: "target_type") var targetType: String?
    @OptionalField(key: "target_id") var targetID: String?
    @OptionalField(key: "ip") var ip: String?
    @OptionalField(key: "user_agent") var userAgent: String?
    @OptionalField(key: "details") var details: String?
    /// Milliseconds since 1970; the hashed form of the time, exact on every database.
    @Field(key: "occurred_at_ms") var occurredAtMs: Int64
    @Field(key: "created_at") var createdAt: Date
    @Field(key: "prev_hash") var prevHash: String
    @Field(key: "hash") var hash: String

    init() {}

    /// The text the chain hashes: every field that must not change, after the previous link's hash.
    var chainedText: String {
        [prevHash, String(seq), chainKey, String(occurredAtMs), companyID?.uuidString ?? "", clientID?.uuidString ?? "",
         actorID?.uuidString ?? "", actorEmail ?? "", action, targetType ?? "", targetID ?? "", ip ?? "",
         userAgent ?? "", details ?? ""].joined(separator: "\u{1F}")
    }
}

/// Latest link of each chain. Updating it first takes the row lock that serialises appends to one chain.
final class AuditChainHead: Model, @unchecked Sendable {
    static let schema = "audit_chain_heads"

    @ID(custom: "chain_key", generatedBy: .user) var id: String?
    @Field(key: "seq") var seq: Int
    @Field(key: "hash") var hash: String
    /// HMAC of (chain, seq, hash) under the audit sealing key; see `AuditSeal`.
    @OptionalField(key: "mac") var mac: String?

    init() {}
}

struct CreateAuditEntries: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(AuditEntry.schema)
            .id()
            .field("chain_key", .string, .required)
            .field("seq", .int64, .required)
            .field("company_id", .uuid)
            .field("client_id", .uuid)
            .field("actor_id", .uuid)
            .field("actor_email", .string)
            .field("action", .string, .required)
            .field("target_type", .string)
            .field("target_id", .string)
            .field("ip", .string)
            .field("user_agent", .string)
            .field("details", .string)
            .field("occurred_at_ms", .int64, .required)
            .field("created_at", .datetime, .required)
            .field("prev_hash", .string, .required)
            .field("hash", .string, .required)
            .unique(on: "chain_key", "seq")
            .create()
        try await database.createIndex(on: AuditEntry.schema, name: "audit_entries_client_time_idx", columns: ["client_id", "created_at"])
        try await database.createIndex(on: AuditEntry.schema, name: "audit_entries_company_time_idx", columns: ["company_id", "created_at"])
        try await database.createIndex(on: AuditEntry.schema, name: "audit_entries_actor_idx", columns: ["actor_id"])
        try await database.schema(AuditChainHead.schema)
            .field("chain_key", .string, .identifier(auto: false))
            .field("seq", .int64, .required)
            .field("hash", .string, .required)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(AuditChainHead.schema).delete()
        try await database.schema(AuditEntry.schema).delete()
    }
}
