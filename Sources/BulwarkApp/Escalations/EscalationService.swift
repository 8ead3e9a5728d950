import Fluent
import SQLKit
import Vapor

/// Reminds learners, then their managers, then administrators about overdue training; each step at most once.
struct EscalationService: Sendable {
    let db: any Database
    let mailer: any Mailer
    let from: MailAddress
    let baseURL: String
    let now: Date

    func settings(for clientID: UUID) async throws -> EscalationSettings {
        try await EscalationSettings.find(clientID, on: db) ?? .defaults(for: clientID)
    }

    struct ScanResult: Sendable, Equatable {
        var sent = 0
        var failed = 0
        var deferred = 0
    }

    /// One pass over every client with escalations on. A 4xx (temporary) mail failure records nothing, so the
    /// next pass retries; a 5xx failure is recorded as failed and not retried.
    @discardableResult
    func scan() async throws -> ScanResult {
        var result = ScanResult()
        for settings in try await EscalationSettings.query(on: db).filter(\.$enabled == true).all() {
            if settings.isQuiet(at: now) { continue }
            let partial = try await scan(client: settings.id!, settings: settings)
            result.sent += partial.sent
            result.failed += partial.failed
            result.deferred += partial.deferred
        }
        return result
    }

    private func scan(client clientID: UUID, settings: EscalationSettings) async throws -> ScanResult {
        var result = ScanResult()
        let thresholds = [("learner", settings.learnerAfterDays), ("manager", settings.managerAfterDays), ("admin", settings.adminAfterDays)]
        let admins = try await User.query(on: db).filter(\.$client.$id == clientID).filter(\.$role == .clientAdmin)
            .filter(\.$status == "active").all()
        for (step, days) in thresholds {
            let cutoff = now.addingTimeInterval(-Double(days) * 86_400)
            // Overdue long enough for this step, and not escalated at this step yet.
            let candidates = try await Enrollment.query(on: db)
                .filter(\.$clientID == clientID).filter(\.$status != "completed").filter(\.$dueAt < cutoff)
                .join(TrainingCampaign.self, on: \Enrollment.$campaign.$id == \TrainingCampaign.$id)
                .filter(TrainingCampaign.self, \.$status == "active")
                .filter(.sql(embed: "NOT EXISTS (SELECT 1 FROM escalations x WHERE x.enrollment_id = training_enrollments.id AND x.step = \(bind: step))"))
                .with(\.$user).with(\.$module).with(\.$campaign)
                .limit(500).all()
            for enrollment in candidates where enrollment.user.isActive {
                let recipients: [User]
                switch step {
                case "learner": recipients = [enrollment.user]
                case "manager":
                    guard let managerID = enrollment.user.$manager.id, let manager = try await User.find(managerID, on: db) else { continue }
                    recipients = [manager]
                default: recipients = admins
                }
                guard !recipients.isEmpty else { continue }
                let days = OverdueService.daysOverdue(enrollment.dueAt, now: now)
                let outcome = await mailer.send(message(step: step, enrollment: enrollment, to: recipients, days: days))
                switch outcome {
                case .temporaryFailure:
                    result.deferred += 1
                    continue
                case .sent: result.sent += 1
                case .permanentFailure: result.failed += 1
                }
                let escalation = Escalation()
                escalation.clientID = clientID
                escalation.enrollmentID = enrollment.id!
                escalation.userID = enrollment.$user.id
                escalation.step = step
                escalation.recipientEmail = recipients.map(\.email).joined(separator: ", ")
                escalation.status = outcome == .sent ? "sent" : "failed"
                if case let .permanentFailure(reason) = outcome { escalation.error = reason }
                escalation.daysOverdue = days
                escalation.sentAt = now
                // The unique (enrollment, step) index makes a concurrent second scan fail here instead of sending twice.
                try await db.transaction { db in
                    try await escalation.create(on: db)
                    try await AuditService(db: db, now: now).record(
                        AuditEvent("escalation.\(escalation.status)", target: ("enrollment", enrollment.id), clientID: clientID,
                                   details: ["step": .string(step), "recipients": .string(escalation.recipientEmail)]), by: .system)
                }
            }
        }
        return result
    }

    private func message(step: String, enrollment: Enrollment, to recipients: [User], days: Int) -> MailMessage {
        let learner = enrollment.user.fullName
        let module = enrollment.module.title
        let link = "\(baseURL)/learn"
        let subject: String
        let text: String
        switch step {
        case "learner":
            subject = "Reminder: \(module) is overdue"
            text = "Hello \(enrollment.user.firstName),\n\nYour training \"\(module)\" (\(enrollment.campaign.name)) was due \(days) day(s) ago. It takes about \(enrollment.module.estimatedMinutes) minutes: \(link)\n\nThank you."
        case "manager":
            subject = "\(learner) has overdue training"
            text = "Hello,\n\n\(learner), who reports to you, has not completed \"\(module)\", due \(days) day(s) ago. A short word from you usually helps.\n\nTeam overview: \(baseURL)/team"
        default:
            subject = "Escalation: \(learner) is \(days) days overdue"
            text = "Hello,\n\n\(learner) has not completed \"\(module)\" (\(enrollment.campaign.name)), now \(days) day(s) overdue, after reminders to them and their manager.\n\nOverdue report: \(baseURL)/api/v1/users/overdue"
        }
        let html = "<p>" + HTML.escape(text).replacingOccurrences(of: "\n\n", with: "</p><p>").replacingOccurrences(of: "\n", with: "<br>") + "</p>"
        return MailMessage(from: from, to: recipients.map { MailAddress(email: $0.email, name: $0.fullName) }, subject: subject,
                           text: text, html: html, headers: ["X-Bulwark-Escalation": step])
    }
}

/// Recurring escalation scan.
struct EscalationScanJob: JobHandler {
    static let kind = "escalations.scan"

    func run(payload: String, app: Application, now: Date) async throws {
        try await app.escalationService(now: now).scan()
    }
}

extension Application {
    func escalationService(now: Date) -> EscalationService {
        EscalationService(db: db, mailer: mailer, from: settings.mailFrom, baseURL: settings.publicBaseURL, now: now)
    }
}
