import Fluent
import Vapor

/// Assigns modules to an audience with a start and a due date.
final class TrainingCampaign: Model, @unchecked Sendable {
    static let schema = "training_campaigns"

    static let statuses = ["draft", "scheduled", "active", "completed", "archived"]

    @ID(key: .id) var id: UUID?
    @Field(key: "client_id") var clientID: UUID
    @Field(key: "name") var name: String
    @OptionalField(key: "description") var description: String?
    @Field(key: "status") var status: String
    @Field(key: "module_ids") var moduleIDsJSON: String
    /// "all", "departments" or "users".
    @Field(key: "audience_type") var audienceType: String
    @Field(key: "audience_values") var audienceValuesJSON: String
    @Field(key: "start_at") var startAt: Date
    @Field(key: "due_at") var dueAt: Date
    /// Days before the due date on which learners who have not finished are reminded.
    @Field(key: "reminder_days") var reminderDaysJSON: String
    @Field(key: "auto_enroll") var autoEnroll: Bool
    @OptionalField(key: "created_by") var createdBy: UUID?
    @OptionalField(key: "activated_at") var activatedAt: Date?
    /// Set when the campaign was deleted after it ran; it stays only for the reports on its enrolments.
    @OptionalField(key: "deleted_at") var deletedAt: Date?
    @OptionalField(key: "completed_at") var completedAt: Date?
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?
    @Timestamp(key: "updated_at", on: .update) var updatedAt: Date?

    init() {}

    /// Listed by hand (`ModelPropertiesTests` checks the list against reflection): Fluent's default finds them by
    /// reflection on every row it reads or writes, which was a fifth of a list's CPU.
    var properties: [any AnyProperty] {
        [
            _id, _clientID, _name, _description, _status, _moduleIDsJSON, _audienceType, _audienceValuesJSON, _startAt,
            _dueAt, _reminderDaysJSON, _autoEnroll, _createdBy, _activatedAt, _deletedAt, _completedAt, _createdAt,
            _updatedAt
        ]
    }

    var moduleIDs: [UUID] {
        get { JSONList.decode(moduleIDsJSON) }
        set { moduleIDsJSON = JSONList.encode(newValue) }
    }

    var audienceValues: [String] {
        get { JSONList.decode(audienceValuesJSON) }
        set { audienceValuesJSON = JSONList.encode(newValue) }
    }

    /// Who the campaign is for, as the shared audience rule reads it.
    var audience: Audience { Audience(type: audienceType, values: audienceValues) }

    var reminderDays: [Int] {
        get { JSONList.decode(reminderDaysJSON) }
        set { reminderDaysJSON = JSONList.encode(newValue) }
    }
}

/// Small JSON arrays kept in a text column (same on SQLite and PostgreSQL).
enum JSONList {
    static func decode<T: Decodable>(_ text: String) -> [T] {
        (try? JSONDecoder().decode([T].self, from: Data(text.utf8))) ?? []
    }

    static func encode<T: Encodable>(_ values: [T]) -> String {
        String(decoding: (try? JSONEncoder().encode(values)) ?? Data("[]".utf8), as: UTF8.self)
    }
}

/// One person's assignment of one module in one campaign.
final class Enrollment: Model, @unchecked Sendable {
    static let schema = "training_enrollments"

    enum Status: String, Codable, Sendable { case notStarted = "not_started", inProgress = "in_progress", completed }

    @ID(key: .id) var id: UUID?
    @Field(key: "client_id") var clientID: UUID
    @Parent(key: "campaign_id") var campaign: TrainingCampaign
    @Parent(key: "module_id") var module: TrainingModule
    @Parent(key: "user_id") var user: User
    @Field(key: "status") var status: String
    @Field(key: "progress") var progress: Int
    @OptionalField(key: "best_score") var bestScore: Int?
    @Field(key: "attempts") var attempts: Int
    @Field(key: "completed_lessons") var completedLessonsJSON: String
    @Field(key: "due_at") var dueAt: Date
    @OptionalField(key: "started_at") var startedAt: Date?
    @OptionalField(key: "completed_at") var completedAt: Date?
    @OptionalField(key: "last_attempt_at") var lastAttemptAt: Date?
    @OptionalField(key: "certificate_code") var certificateCode: String?
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?

    init() {}

    /// Listed by hand (`ModelPropertiesTests` checks the list against reflection): Fluent's default finds them by
    /// reflection on every row it reads or writes, which was a fifth of a list's CPU.
    var properties: [any AnyProperty] {
        [
            _id, _clientID, _campaign, _module, _user, _status, _progress, _bestScore, _attempts, _completedLessonsJSON,
            _dueAt, _startedAt, _completedAt, _lastAttemptAt, _certificateCode, _createdAt
        ]
    }

    var completedLessons: [String] {
        get { JSONList.decode(completedLessonsJSON) }
        set { completedLessonsJSON = JSONList.encode(newValue) }
    }

    /// Overdue is derived: not completed and past the due date.
    func displayStatus(now: Date) -> String { Self.displayStatus(status, dueAt: dueAt, now: now) }

    /// The status shown: an assignment not completed by its due date is "overdue" (also for rows read as plain SQL).
    static func displayStatus(_ status: String, dueAt: Date, now: Date) -> String {
        status != Status.completed.rawValue && dueAt < now ? "overdue" : status
    }
}

struct CreateTrainingCampaignsAndEnrollments: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(TrainingCampaign.schema)
            .id()
            .field("client_id", .uuid, .required, .references(Client.schema, .id, onDelete: .cascade))
            .field("name", .string, .required)
            .field("description", .string)
            .field("status", .string, .required)
            .field("module_ids", .string, .required)
            .field("audience_type", .string, .required)
            .field("audience_values", .string, .required)
            .field("start_at", .datetime, .required)
            .field("due_at", .datetime, .required)
            .field("reminder_days", .string, .required)
            .field("auto_enroll", .bool, .required)
            .field("created_by", .uuid)
            .field("activated_at", .datetime)
            .field("completed_at", .datetime)
            .field("created_at", .datetime)
            .field("updated_at", .datetime)
            .create()
        try await database.createIndex(on: TrainingCampaign.schema, name: "training_campaigns_client_status_idx", columns: ["client_id", "status"])
        try await database.schema(Enrollment.schema)
            .id()
            .field("client_id", .uuid, .required, .references(Client.schema, .id, onDelete: .cascade))
            .field("campaign_id", .uuid, .required, .references(TrainingCampaign.schema, .id, onDelete: .cascade))
            .field("module_id", .uuid, .required, .references(TrainingModule.schema, .id, onDelete: .cascade))
            .field("user_id", .uuid, .required, .references(User.schema, .id, onDelete: .cascade))
            .field("status", .string, .required)
            .field("progress", .int, .required)
            .field("best_score", .int)
            .field("attempts", .int, .required)
            .field("completed_lessons", .string, .required)
            .field("due_at", .datetime, .required)
            .field("started_at", .datetime)
            .field("completed_at", .datetime)
            .field("last_attempt_at", .datetime)
            .field("certificate_code", .string)
            .field("created_at", .datetime)
            .unique(on: "campaign_id", "module_id", "user_id")
            .unique(on: "certificate_code")
            .create()
        try await database.createIndex(on: Enrollment.schema, name: "training_enrollments_overdue_idx", columns: ["client_id", "status", "due_at"])
        try await database.createIndex(on: Enrollment.schema, name: "training_enrollments_user_idx", columns: ["user_id", "status"])
        try await database.createIndex(on: Enrollment.schema, name: "training_enrollments_module_idx", columns: ["module_id"])
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Enrollment.schema).delete()
        try await database.schema(TrainingCampaign.schema).delete()
    }
}

struct UpdateTrainingCampaignsAddDeletedAt: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(TrainingCampaign.schema).field("deleted_at", .datetime).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(TrainingCampaign.schema).deleteField("deleted_at").update()
    }
}
