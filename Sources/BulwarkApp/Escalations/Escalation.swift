import Fluent
import Vapor

/// Per-client escalation policy for overdue training.
final class EscalationSettings: Model, @unchecked Sendable {
    static let schema = "escalation_settings"

    @ID(custom: "client_id", generatedBy: .user) var id: UUID?
    @Field(key: "enabled") var enabled: Bool
    @Field(key: "learner_after_days") var learnerAfterDays: Int
    @Field(key: "manager_after_days") var managerAfterDays: Int
    @Field(key: "admin_after_days") var adminAfterDays: Int
    /// Hours (0–23, in `timezone`) during which no escalation email is sent; equal values mean no quiet hours.
    @Field(key: "quiet_start_hour") var quietStartHour: Int
    @Field(key: "quiet_end_hour") var quietEndHour: Int
    @Field(key: "timezone") var timezone: String
    @Timestamp(key: "updated_at", on: .update) var updatedAt: Date?

    init() {}

    static func defaults(for clientID: UUID) -> EscalationSettings {
        let settings = EscalationSettings()
        settings.id = clientID
        settings.enabled = false
        settings.learnerAfterDays = 1
        settings.managerAfterDays = 7
        settings.adminAfterDays = 14
        settings.quietStartHour = 20
        settings.quietEndHour = 7
        settings.timezone = "UTC"
        return settings
    }

    func isQuiet(at date: Date) -> Bool {
        guard quietStartHour != quietEndHour else { return false }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: timezone) ?? .gmt
        let hour = calendar.component(.hour, from: date)
        return quietStartHour < quietEndHour ? (hour >= quietStartHour && hour < quietEndHour)
                                             : (hour >= quietStartHour || hour < quietEndHour)
    }
}

/// One escalation step sent (or attempted) for one overdue assignment. Unique per assignment and step.
final class Escalation: Model, @unchecked Sendable {
    static let schema = "escalations"

    static let steps = ["learner", "manager", "admin"]

    @ID(key: .id) var id: UUID?
    @Field(key: "client_id") var clientID: UUID
    @Field(key: "enrollment_id") var enrollmentID: UUID
    @Field(key: "user_id") var userID: UUID
    @Field(key: "step") var step: String
    @Field(key: "recipient_email") var recipientEmail: String
    @Field(key: "status") var status: String
    @OptionalField(key: "error") var error: String?
    @Field(key: "days_overdue") var daysOverdue: Int
    @Field(key: "sent_at") var sentAt: Date
    @OptionalField(key: "acknowledged_at") var acknowledgedAt: Date?
    @OptionalField(key: "acknowledged_by") var acknowledgedBy: UUID?
    /// While `pending`: the worker about to send it, and when it recorded that (see `EscalationService.scan`).
    @OptionalField(key: "claimed_by") var claimedBy: String?
    @OptionalField(key: "claimed_at") var claimedAt: Date?

    init() {}
}

struct CreateEscalations: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(EscalationSettings.schema)
            .field("client_id", .uuid, .identifier(auto: false), .references(Client.schema, .id, onDelete: .cascade))
            .field("enabled", .bool, .required)
            .field("learner_after_days", .int, .required)
            .field("manager_after_days", .int, .required)
            .field("admin_after_days", .int, .required)
            .field("quiet_start_hour", .int, .required)
            .field("quiet_end_hour", .int, .required)
            .field("timezone", .string, .required)
            .field("updated_at", .datetime)
            .create()
        try await database.schema(Escalation.schema)
            .id()
            .field("client_id", .uuid, .required, .references(Client.schema, .id, onDelete: .cascade))
            .field("enrollment_id", .uuid, .required, .references(Enrollment.schema, .id, onDelete: .cascade))
            .field("user_id", .uuid, .required, .references(User.schema, .id, onDelete: .cascade))
            .field("step", .string, .required)
            .field("recipient_email", .string, .required)
            .field("status", .string, .required)
            .field("error", .string)
            .field("days_overdue", .int, .required)
            .field("sent_at", .datetime, .required)
            .field("acknowledged_at", .datetime)
            .field("acknowledged_by", .uuid)
            .unique(on: "enrollment_id", "step")
            .create()
        try await database.createIndex(on: Escalation.schema, name: "escalations_client_sent_idx", columns: ["client_id", "sent_at"])
        try await database.createIndex(on: Escalation.schema, name: "escalations_user_idx", columns: ["user_id"])
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Escalation.schema).delete()
        try await database.schema(EscalationSettings.schema).delete()
    }
}

/// Escalations and reminders are recorded as pending, with the worker that claimed them, before their mail goes out.
struct UpdateEscalationsAndRemindersForClaims: AsyncMigration {
    func prepare(on database: any Database) async throws {
        // SQLite adds one column per ALTER TABLE: one update per field.
        for schema in [Escalation.schema, TrainingReminder.schema] {
            try await database.schema(schema).field("claimed_by", .string).update()
            try await database.schema(schema).field("claimed_at", .datetime).update()
        }
        try await database.createIndex(on: Escalation.schema, name: "escalations_pending_idx", columns: ["status", "claimed_at"])
        try await database.createIndex(on: TrainingReminder.schema, name: "training_reminders_pending_idx", columns: ["status", "claimed_at"])
    }

    func revert(on database: any Database) async throws {
        for schema in [TrainingReminder.schema, Escalation.schema] {
            try await database.schema(schema).deleteField("claimed_by").update()
            try await database.schema(schema).deleteField("claimed_at").update()
        }
    }
}
