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
    /// While `pending`: the worker about to send it, and when it recorded that.
    @OptionalField(key: "claimed_by") var claimedBy: String?
    @OptionalField(key: "claimed_at") var claimedAt: Date?

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
    /// Read at each use: a long scan must not stamp late work with its start time.
    let clock: any Clock
    var now: Date { clock.now() }

    /// Sends due reminders, each recorded as pending before its mail goes out (the unique (assignment, days) index makes
    /// a concurrent scan skip it) and marked after; a temporary failure removes the record so the next scan retries.
    /// Only people still here are fetched, in a stable order, page after page.
    @discardableResult
    func scan(batch: Int = 500, context: JobContext? = nil) async throws -> Int {
        var sent = 0
        let worker = context?.worker ?? "scan-\(UUID().uuidString.prefix(8))"
        let lease = context?.lease ?? 600
        func shouldStop() -> Bool { context?.shouldStop() ?? false }
        // Pending records whose worker died between recording and marking are sent again (at most that one mail twice).
        try await db.sql.raw("""
            UPDATE training_reminders SET claimed_by = \(bind: worker), claimed_at = \(bind: now)
            WHERE status = 'pending' AND claimed_at < \(bind: now.addingTimeInterval(-lease))
            """).run()
        for reminder in try await TrainingReminder.query(on: db).filter(\.$status == "pending").filter(\.$claimedBy == worker).all() {
            guard let enrollment = try await Enrollment.query(on: db).filter(\.$id == reminder.enrollmentID)
                .with(\.$user).with(\.$module).with(\.$campaign).first() else { continue }
            if try await deliver(reminder.id!, enrollment: enrollment, campaign: enrollment.campaign) { sent += 1 }
        }
        let campaigns = try await TrainingCampaign.query(on: db).filter(\.$status == "active").filter(\.$dueAt > now).sort(\.$id).all()
        for campaign in campaigns {
            for days in campaign.reminderDays.sorted() {
                let horizon = now.addingTimeInterval(Double(days) * 86_400)
                var after: UUID?
                while !shouldStop() {
                    let query = Enrollment.query(on: db)
                        .filter(\.$campaign.$id == campaign.id!).filter(\.$status != "completed")
                        .filter(\.$dueAt > now).filter(\.$dueAt <= horizon)
                        .join(User.self, on: \Enrollment.$user.$id == \User.$id).filter(User.self, \.$status == "active")
                        .filter(.sql(embed: "NOT EXISTS (SELECT 1 FROM training_reminders r WHERE r.enrollment_id = training_enrollments.id AND r.days_before <= \(bind: days))"))
                    if let after { query.filter(\.$id > after) }
                    let due = try await query.sort(\.$id).limit(batch).with(\.$user).with(\.$module).all()
                    guard let last = due.last else { break }
                    after = last.id
                    for enrollment in due {
                        if shouldStop() { break }
                        guard let reminderID = try await claim(enrollment, days: days, worker: worker) else { continue }
                        if try await deliver(reminderID, enrollment: enrollment, campaign: campaign) { sent += 1 }
                    }
                }
            }
        }
        return sent
    }

    private func claim(_ enrollment: Enrollment, days: Int, worker: String) async throws -> UUID? {
        let id = UUID()
        let inserted = try await db.sql.raw("""
            INSERT INTO training_reminders (id, enrollment_id, days_before, status, sent_at, claimed_by, claimed_at)
            VALUES (\(bind: id), \(bind: enrollment.id!), \(bind: days), 'pending', \(bind: now), \(bind: worker), \(bind: now))
            ON CONFLICT (enrollment_id, days_before) DO NOTHING RETURNING id
            """).first()
        return inserted == nil ? nil : id
    }

    /// Sends and marks; true when the mail went out.
    private func deliver(_ reminderID: UUID, enrollment: Enrollment, campaign: TrainingCampaign) async throws -> Bool {
        let outcome = await mailer.send(message(enrollment, campaign: campaign))
        if case .temporaryFailure = outcome {
            try await TrainingReminder.query(on: db).filter(\.$id == reminderID).delete()
            return false
        }
        try await TrainingReminder.query(on: db).filter(\.$id == reminderID)
            .set(\.$status, to: outcome == .sent ? "sent" : "failed").set(\.$sentAt, to: now).set(\.$claimedBy, to: nil).update()
        return outcome == .sent
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

    func run(payload: String, context: JobContext) async throws {
        let app = context.app
        try await ReminderService(db: app.db, mailer: app.mailer, from: app.settings.mailFrom,
                                  baseURL: app.settings.publicBaseURL, clock: app.clock).scan(context: context)
    }
}
