import Fluent
import SQLKit
import Vapor

/// A reminder sent before the due date of a campaign (its `reminder_days`). Unique per assignment and day count.
final class TrainingReminder: Model, @unchecked Sendable {
    static let schema = "training_reminders"

    @ID(key: .id) var id: UUID?
    @Field(key: "enrollment_id") var enrollmentID: UUID
    @Field(key: "days_before") var daysBefore: Int
    @Field(key: "status") var status: String
    @Field(key: "sent_at") var sentAt: Date

    init() {}
}

struct CreateTrainingReminders: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(TrainingReminder.schema)
            .id()
            .field("enrollment_id", .uuid, .required, .references(Enrollment.schema, .id, onDelete: .cascade))
            .field("days_before", .int, .required)
            .field("status", .string, .required)
            .field("sent_at", .datetime, .required)
            .unique(on: "enrollment_id", "days_before")
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(TrainingReminder.schema).delete()
    }
}

/// Sends the reminders campaigns ask for. Nearest reminder first, so someone enrolled late gets one reminder, not all.
struct ReminderService: Sendable {
    let db: any Database
    let mailer: any Mailer
    let from: MailAddress
    let baseURL: String
    let now: Date

    @discardableResult
    func scan(batch: Int = 500) async throws -> Int {
        var sent = 0
        let campaigns = try await TrainingCampaign.query(on: db).filter(\.$status == "active").filter(\.$dueAt > now).all()
        for campaign in campaigns {
            for days in campaign.reminderDays.sorted() {
                let horizon = now.addingTimeInterval(Double(days) * 86_400)
                let due = try await Enrollment.query(on: db)
                    .filter(\.$campaign.$id == campaign.id!).filter(\.$status != "completed")
                    .filter(\.$dueAt > now).filter(\.$dueAt <= horizon)
                    .filter(.sql(embed: "NOT EXISTS (SELECT 1 FROM training_reminders r WHERE r.enrollment_id = training_enrollments.id AND r.days_before <= \(bind: days))"))
                    .with(\.$user).with(\.$module).limit(batch).all()
                for enrollment in due where enrollment.user.isActive {
                    let outcome = await mailer.send(message(enrollment, campaign: campaign))
                    if case .temporaryFailure = outcome { continue }
                    let reminder = TrainingReminder()
                    reminder.enrollmentID = enrollment.id!
                    reminder.daysBefore = days
                    reminder.status = outcome == .sent ? "sent" : "failed"
                    reminder.sentAt = now
                    try await reminder.create(on: db)
                    if outcome == .sent { sent += 1 }
                }
            }
        }
        return sent
    }

    private func message(_ enrollment: Enrollment, campaign: TrainingCampaign) -> MailMessage {
        let days = max(1, Int((enrollment.dueAt.timeIntervalSince(now) / 86_400).rounded(.up)))
        let text = "Hello \(enrollment.user.firstName),\n\n\"\(enrollment.module.title)\" (\(campaign.name)) is due in \(days) day(s). It takes about \(enrollment.module.estimatedMinutes) minutes: \(baseURL)/learn\n\nThank you."
        return MailMessage(from: from, to: [MailAddress(email: enrollment.user.email, name: enrollment.user.fullName)],
                           subject: "Reminder: \(enrollment.module.title) is due in \(days) day(s)", text: text,
                           html: "<p>" + HTML.escape(text).replacingOccurrences(of: "\n\n", with: "</p><p>") + "</p>",
                           headers: ["X-Bulwark-Reminder": String(days)])
    }
}

struct TrainingReminderJob: JobHandler {
    static let kind = "training.reminders"

    func run(payload: String, app: Application, now: Date) async throws {
        try await ReminderService(db: app.db, mailer: app.mailer, from: app.settings.mailFrom,
                                  baseURL: app.settings.publicBaseURL, now: now).scan()
    }
}
