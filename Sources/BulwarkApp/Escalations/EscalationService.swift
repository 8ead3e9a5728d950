import Fluent
import SQLKit
import Vapor

/// Reminds learners, then their managers, then administrators about overdue training; each step at most once.
struct EscalationService: Sendable {
    let db: any Database
    let mailer: any Mailer
    let from: MailAddress
    let baseURL: String
    /// Read at each use: a long scan must not stamp late work with its start time.
    let clock: any Clock
    var now: Date { clock.now() }

    func settings(for clientID: UUID) async throws -> EscalationSettings {
        try await EscalationSettings.find(clientID, on: db) ?? .defaults(for: clientID)
    }

    struct ScanResult: Sendable, Equatable {
        var sent = 0
        var failed = 0
        var deferred = 0
    }

    /// One pass over every client with escalations on. Each step is recorded as pending before its mail goes out (the
    /// unique (assignment, step) index makes a concurrent scan skip it), then marked sent or failed. A temporary (4xx)
    /// failure removes the record, so the next pass retries; a 5xx failure stays as failed. A pending record left by a
    /// process that died is taken over once its lease ran out (that one mail may then go twice).
    @discardableResult
    func scan(context: JobContext? = nil) async throws -> ScanResult {
        var result = ScanResult()
        let worker = context?.worker ?? "scan-\(UUID().uuidString.prefix(8))"
        for settings in try await EscalationSettings.query(on: db).filter(\.$enabled == true).sort(\.$id).all() {
            if settings.isQuiet(at: now) { continue }
            let partial = try await scan(client: settings.id!, settings: settings, worker: worker, lease: context?.lease ?? 600,
                                         context: context)
            result.sent += partial.sent
            result.failed += partial.failed
            result.deferred += partial.deferred
        }
        return result
    }

    private func scan(client clientID: UUID, settings: EscalationSettings, worker: String, lease: TimeInterval,
                      context: JobContext?) async throws -> ScanResult {
        func shouldStop() -> Bool { context?.shouldStop() ?? false }
        var result = ScanResult()
        let admins = try await User.query(on: db).filter(\.$client.$id == clientID).filter(\.$role == .clientAdmin)
            .filter(\.$status == "active").sort(\.$email).all()
        for (step, days) in [("learner", settings.learnerAfterDays), ("manager", settings.managerAfterDays), ("admin", settings.adminAfterDays)] {
            if step == "admin" && admins.isEmpty { continue }
            try await takeOverAbandoned(step: step, clientID: clientID, worker: worker, lease: lease)
            var after: (Date, UUID)?
            while !shouldStop() {
                let page = try await candidates(clientID: clientID, step: step, overdueDays: days, after: after)
                guard let last = page.last else { break }
                after = (last.dueAt, last.id!)
                for enrollment in page {
                    if shouldStop() { break }
                    guard let escalationID = try await claim(enrollment, step: step, worker: worker) else { continue }
                    try await deliver(escalationID, enrollment: enrollment, step: step, admins: admins, result: &result)
                }
            }
            // Abandoned records taken over above are sent here, once each.
            for escalation in try await Escalation.query(on: db).filter(\.$clientID == clientID).filter(\.$step == step)
                .filter(\.$status == "pending").filter(\.$claimedBy == worker).all() {
                guard let enrollment = try await Enrollment.query(on: db).filter(\.$id == escalation.enrollmentID)
                    .with(\.$user).with(\.$module).with(\.$campaign).first() else { continue }
                try await deliver(escalation.id!, enrollment: enrollment, step: step, admins: admins, result: &result)
            }
        }
        return result
    }

    /// Overdue long enough for the step and not escalated at it yet, for people who are still here (and, for the
    /// manager step, whose manager is), in a stable order: rows that cannot be sent are never fetched, so they cannot
    /// crowd out those that can.
    private func candidates(clientID: UUID, step: String, overdueDays: Int, after: (Date, UUID)?) async throws -> [Enrollment] {
        let cutoff = now.addingTimeInterval(-Double(overdueDays) * 86_400)
        let query = Enrollment.query(on: db)
            .filter(\.$clientID == clientID).filter(\.$status != "completed").filter(\.$dueAt < cutoff)
            .join(TrainingCampaign.self, on: \Enrollment.$campaign.$id == \TrainingCampaign.$id)
            .filter(TrainingCampaign.self, \.$status == "active")
            .join(User.self, on: \Enrollment.$user.$id == \User.$id)
            .filter(User.self, \.$status == "active")
            .filter(.sql(embed: "NOT EXISTS (SELECT 1 FROM escalations x WHERE x.enrollment_id = training_enrollments.id AND x.step = \(bind: step))"))
        if step == "manager" {
            query.filter(.sql(embed: "EXISTS (SELECT 1 FROM users m WHERE m.id = users.manager_id AND m.status = 'active')"))
        }
        if let (dueAt, id) = after {
            query.group(.or) { group in
                group.filter(\.$dueAt > dueAt)
                group.group(.and) { $0.filter(\.$dueAt == dueAt).filter(\.$id > id) }
            }
        }
        return try await query.sort(\.$dueAt).sort(\.$id).limit(500).with(\.$user).with(\.$module).with(\.$campaign).all()
    }

    /// Records the step as pending for this worker; nil when another scan already recorded it.
    private func claim(_ enrollment: Enrollment, step: String, worker: String) async throws -> UUID? {
        let id = UUID()
        let inserted = try await db.sql.raw("""
            INSERT INTO escalations (id, client_id, enrollment_id, user_id, step, recipient_email, status, days_overdue, sent_at,
                                     claimed_by, claimed_at)
            VALUES (\(bind: id), \(bind: enrollment.clientID), \(bind: enrollment.id!), \(bind: enrollment.$user.id), \(bind: step), '',
                    'pending', \(bind: OverdueService.daysOverdue(enrollment.dueAt, now: now)), \(bind: now), \(bind: worker), \(bind: now))
            ON CONFLICT (enrollment_id, step) DO NOTHING RETURNING id
            """).first()
        return inserted == nil ? nil : id
    }

    /// Pending records whose worker stopped renewing them (it died between recording and marking) become this worker's.
    private func takeOverAbandoned(step: String, clientID: UUID, worker: String, lease: TimeInterval) async throws {
        try await db.sql.raw("""
            UPDATE escalations SET claimed_by = \(bind: worker), claimed_at = \(bind: now)
            WHERE client_id = \(bind: clientID) AND step = \(bind: step) AND status = 'pending'
              AND claimed_at < \(bind: now.addingTimeInterval(-lease))
            """).run()
    }

    private func deliver(_ escalationID: UUID, enrollment: Enrollment, step: String, admins: [User],
                         result: inout ScanResult) async throws {
        let recipients: [User]
        switch step {
        case "learner": recipients = [enrollment.user]
        case "manager":
            guard let managerID = enrollment.user.$manager.id, let manager = try await User.find(managerID, on: db) else {
                try await Escalation.query(on: db).filter(\.$id == escalationID).delete()
                return
            }
            recipients = [manager]
        default: recipients = admins
        }
        let days = OverdueService.daysOverdue(enrollment.dueAt, now: now)
        let outcome = await mailer.send(message(step: step, enrollment: enrollment, to: recipients, days: days))
        if case .temporaryFailure = outcome {
            try await Escalation.query(on: db).filter(\.$id == escalationID).delete()
            result.deferred += 1
            return
        }
        let status = outcome == .sent ? "sent" : "failed"
        let error: String? = if case let .permanentFailure(reason) = outcome { reason } else { nil }
        if outcome == .sent { result.sent += 1 } else { result.failed += 1 }
        let emails = recipients.map(\.email).joined(separator: ", ")
        let now = self.now
        let clientID = enrollment.clientID
        try await db.transaction { db in
            try await Escalation.query(on: db).filter(\.$id == escalationID)
                .set(\.$status, to: status).set(\.$error, to: error).set(\.$recipientEmail, to: emails)
                .set(\.$daysOverdue, to: days).set(\.$sentAt, to: now).set(\.$claimedBy, to: nil).update()
            try await AuditService(db: db, now: now).record(
                AuditEvent("escalation.\(status)", target: ("enrollment", enrollment.id), clientID: clientID,
                           details: ["step": .string(step), "recipients": .string(emails)]), by: .system)
        }
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

    func run(payload: String, context: JobContext) async throws {
        try await context.app.escalationService().scan(context: context)
    }
}

extension Application {
    func escalationService() -> EscalationService {
        EscalationService(db: db, mailer: mailer, from: settings.mailFrom, baseURL: settings.publicBaseURL, clock: clock)
    }
}
