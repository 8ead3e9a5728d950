import Fluent
import Vapor

/// A unit of background work. Claimed by one worker at a time; retried with backoff; dead after `maxAttempts`.
final class Job: Model, @unchecked Sendable {
    static let schema = "jobs"

    enum Status: String, Codable, Sendable { case queued, running, done, dead }

    @ID(key: .id) var id: UUID?
    @Field(key: "kind") var kind: String
    @Field(key: "payload") var payload: String
    @Field(key: "status") var status: String
    @Field(key: "run_at") var runAt: Date
    @Field(key: "attempts") var attempts: Int
    @Field(key: "max_attempts") var maxAttempts: Int
    @OptionalField(key: "last_error") var lastError: String?
    @OptionalField(key: "locked_at") var lockedAt: Date?
    @OptionalField(key: "locked_by") var lockedBy: String?
    /// At most one live job per key: scheduling the same key twice is a no-op (recurring slots, idempotent sends).
    @OptionalField(key: "unique_key") var uniqueKey: String?
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?
    @OptionalField(key: "finished_at") var finishedAt: Date?

    init() {}
}

struct CreateJobs: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(Job.schema)
            .id()
            .field("kind", .string, .required)
            .field("payload", .string, .required)
            .field("status", .string, .required)
            .field("run_at", .datetime, .required)
            .field("attempts", .int, .required)
            .field("max_attempts", .int, .required)
            .field("last_error", .string)
            .field("locked_at", .datetime)
            .field("locked_by", .string)
            .field("unique_key", .string)
            .field("created_at", .datetime)
            .field("finished_at", .datetime)
            .unique(on: "unique_key")
            .create()
        try await database.createIndex(on: Job.schema, name: "jobs_status_run_at_idx", columns: ["status", "run_at"])
        try await database.createIndex(on: Job.schema, name: "jobs_kind_idx", columns: ["kind", "status"])
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Job.schema).delete()
    }
}
