import Fluent
import SQLKit
import Vapor

/// Sends due simulations. A claim stamps each simulation with the worker's lease; each message's outcome is committed
/// (through a group-commit writer shared by the connections) before the next message goes out on that connection, so
/// after a crash at most the messages in flight (one per connection) go out again, and after SIGTERM none: the message
/// in hand is finished and recorded, the rest handed back. A connection that cannot be used (refused, TLS,
/// authentication, greeting) charges no message an attempt: the profile is paused and its messages wait. A campaign
/// whose own setup fails (its profile's password no longer opens) is paused alone; other tenants go on.
struct PhishingSender: Sendable {
    let context: JobContext

    static let batchSize = 200
    /// SMTP connections used at once for one campaign's share of a batch.
    static let connections = 4
    static let maxAttempts = 5
    /// Longest pause of a profile or a campaign after repeated failures.
    static let maxPause: TimeInterval = 3600

    private var app: Application { context.app }
    private var db: any Database { context.app.db }

    @discardableResult
    func sendDue() async throws -> Int {
        var total = 0
        defer { app.phishingMetrics.sent.increment(by: Int64(total)) }
        while true {
            if context.shouldStop() { throw JobInterrupted() }
            let claimed = try await claim()
            if claimed.isEmpty { break }
            for (campaignID, simulations) in Dictionary(grouping: claimed, by: { $0.$campaign.id }) {
                do {
                    total += try await send(simulations, campaignID: campaignID)
                } catch let error as CampaignSetupError {
                    try await pauseCampaign(campaignID, reason: error.reason)
                    try await handBack(simulations.map { $0.id! })
                }
            }
            if context.shouldStop() {
                try await handBack(claimed.map { $0.id! })
                throw JobInterrupted()
            }
            if claimed.count < Self.batchSize { break }
        }
        try await markFinishedCampaigns()
        return total
    }

    /// Due simulations of campaigns that are sending, through profiles that are not paused, plus those whose lease ran
    /// out (a worker that stopped without handing them back).
    private func claim() async throws -> [Simulation] {
        let now = context.now
        let expired = now.addingTimeInterval(-context.lease)
        let lock = db.sql.dialect.name == "postgresql" ? "FOR UPDATE OF s SKIP LOCKED" : ""
        let ids = try await db.sql.raw("""
            UPDATE phishing_simulations SET send_status = 'sending', claimed_at = \(bind: now), claimed_by = \(bind: context.worker)
            WHERE id IN (
                SELECT s.id FROM phishing_simulations s
                JOIN phishing_campaigns c ON c.id = s.campaign_id
                JOIN phishing_sending_profiles p ON p.id = c.sending_profile_id
                WHERE ((s.send_status = 'queued' AND s.send_at <= \(bind: now))
                       OR (s.send_status = 'sending' AND s.claimed_at < \(bind: expired)))
                  AND c.status IN ('scheduled', 'sending')
                  AND (c.send_retry_at IS NULL OR c.send_retry_at <= \(bind: now))
                  AND (p.paused_until IS NULL OR p.paused_until <= \(bind: now))
                ORDER BY s.send_at LIMIT \(bind: Self.batchSize) \(unsafeRaw: lock)
            ) RETURNING id
            """).all().map { try $0.decode(column: "id", as: UUID.self) }
        guard !ids.isEmpty else { return [] }
        return try await Simulation.query(on: db).filter(\.$id ~~ ids).sort(\.$sendAt).all()
    }

    private struct CampaignSetupError: Error { let reason: String }

    private func send(_ simulations: [Simulation], campaignID: UUID) async throws -> Int {
        guard let campaign = try await PhishingCampaign.find(campaignID, on: db),
              let profileID = campaign.sendingProfileID, let profile = try await SendingProfile.find(profileID, on: db) else {
            throw CampaignSetupError(reason: "The campaign has no sending profile.")
        }
        let mailer: any Mailer
        do {
            mailer = try SendingProfileMailer.mailer(for: profile, app: app)
        } catch {
            throw CampaignSetupError(reason: "The sending profile's password cannot be read; save it again.")
        }
        let templates = Dictionary(uniqueKeysWithValues: try await PhishingTemplate.query(on: db)
            .filter(\.$id ~~ campaign.templateIDs).all().map { ($0.id!, $0) })
        var work: [(Simulation, MailMessage)] = []
        var unsendable: [SendOutcome] = []
        for simulation in simulations {
            do {
                guard let template = templates[simulation.templateID] else { throw TemplateMissing() }
                work.append((simulation, try Self.message(for: simulation, template: template, campaign: campaign, profile: profile)))
            } catch {
                unsendable.append(SendOutcome(simulation: simulation, worker: context.worker, outcome: .permanentFailure(
                    error is TemplateMissing ? "template missing" : "the template could not be rendered"), at: context.now))
            }
        }
        for outcome in unsendable { try await app.sendOutcomes.submit(outcome) }
        let share = max(1, (work.count + Self.connections - 1) / Self.connections)
        let chunks = stride(from: 0, to: work.count, by: share).map { Array(work[$0..<min($0 + share, work.count)]) }
        let results = try await withThrowingTaskGroup(of: ChunkResult.self) { group in
            for chunk in chunks { group.addTask { await self.send(chunk, through: mailer) } }
            return try await group.reduce(into: [ChunkResult]()) { $0.append($1) }
        }
        if let failure = results.compactMap(\.connectionFailure).first {
            try await pauseProfile(profile, reason: failure.description)
        } else if results.contains(where: { $0.connected }) {
            try await resume(profile, campaign: campaign)
        }
        let untried = results.flatMap(\.untried)
        if !untried.isEmpty { try await handBack(untried) }
        return results.reduce(0) { $0 + $1.sent }
    }

    private struct TemplateMissing: Error {}

    private struct ChunkResult: Sendable {
        var sent = 0
        var connected = false
        var connectionFailure: SMTPError?
        /// Claimed simulations that were not tried: handed back, uncounted.
        var untried: [UUID] = []
    }

    /// One connection's share: each message is checked (still ours, not cancelled, no stop asked), sent, and its
    /// outcome committed before the next.
    private func send(_ chunk: [(Simulation, MailMessage)], through mailer: any Mailer) async -> ChunkResult {
        var result = ChunkResult()
        var recorded = Set<Int>()
        var skipped = Set<Int>()
        do {
            try await mailer.deliver(chunk.map(\.1), proceed: { index in
                if context.shouldStop() { return .stop }
                guard try await stillClaimed(chunk[index].0.id!) else {
                    skipped.insert(index)
                    return .skip
                }
                return .send
            }, record: { index, outcome in
                result.connected = true
                recorded.insert(index)
                try await app.sendOutcomes.submit(SendOutcome(simulation: chunk[index].0, worker: context.worker, outcome: outcome,
                                                              at: context.now))
                if outcome == .sent { result.sent += 1 }
            })
        } catch {
            let failure = SMTPError.classify(error)
            if failure.concernsConnection { result.connectionFailure = failure }
        }
        result.untried = chunk.indices.filter { !recorded.contains($0) && !skipped.contains($0) }.map { chunk[$0].0.id! }
        return result
    }

    /// Still claimed by this worker and still sending: a cancel, a completion or a lost lease stops the message.
    private func stillClaimed(_ id: UUID) async throws -> Bool {
        try await db.sql.raw("""
            SELECT 1 AS yes FROM phishing_simulations
            WHERE id = \(bind: id) AND send_status = 'sending' AND claimed_by = \(bind: context.worker)
            """).first() != nil
    }

    /// Back to the queue at once, no attempt charged (they were never tried, or the connection failed before them).
    private func handBack(_ ids: [UUID]) async throws {
        guard !ids.isEmpty else { return }
        for start in stride(from: 0, to: ids.count, by: 500) {
            let slice = Array(ids[start..<min(start + 500, ids.count)])
            try await db.sql.raw("""
                UPDATE phishing_simulations SET send_status = 'queued', claimed_by = NULL, claimed_at = NULL
                WHERE id IN (\(binds: slice)) AND send_status = 'sending' AND claimed_by = \(bind: context.worker)
                """).run()
        }
    }

    private func pauseProfile(_ profile: SendingProfile, reason: String) async throws {
        let failures = profile.failureCount + 1
        let pause = min(pow(2, Double(failures - 1)) * 30, Self.maxPause)
        try await db.sql.raw("""
            UPDATE phishing_sending_profiles SET failure_count = \(bind: failures), pause_reason = \(bind: reason),
                paused_until = \(bind: context.now.addingTimeInterval(pause))
            WHERE id = \(bind: profile.id!)
            """).run()
        app.logger.warning("Sending profile \(profile.id!) paused for \(Int(pause)) s: \(reason)")
    }

    private func pauseCampaign(_ id: UUID, reason: String) async throws {
        guard let campaign = try await PhishingCampaign.find(id, on: db) else { return }
        let failures = campaign.sendFailures + 1
        let pause = min(pow(2, Double(failures - 1)) * 30, Self.maxPause)
        try await db.sql.raw("""
            UPDATE phishing_campaigns SET send_failures = \(bind: failures), last_error = \(bind: reason),
                send_retry_at = \(bind: context.now.addingTimeInterval(pause))
            WHERE id = \(bind: id)
            """).run()
        app.logger.warning("Phishing campaign \(id) paused for \(Int(pause)) s: \(reason)")
    }

    /// A connection worked: whatever pause the profile and the campaign had is over.
    private func resume(_ profile: SendingProfile, campaign: PhishingCampaign) async throws {
        if profile.failureCount > 0 || profile.pausedUntil != nil {
            try await db.sql.raw("""
                UPDATE phishing_sending_profiles SET failure_count = 0, pause_reason = NULL, paused_until = NULL
                WHERE id = \(bind: profile.id!)
                """).run()
        }
        if campaign.sendFailures > 0 || campaign.lastError != nil {
            try await db.sql.raw("""
                UPDATE phishing_campaigns SET send_failures = 0, last_error = NULL, send_retry_at = NULL WHERE id = \(bind: campaign.id!)
                """).run()
        }
    }

    /// The personalised email: links point at the click tracker, the pixel at the open tracker.
    static func message(for simulation: Simulation, template: PhishingTemplate, campaign: PhishingCampaign,
                        profile: SendingProfile) throws -> MailMessage {
        let base = campaign.trackingBaseURL
        let person = TemplateRenderer.Person(firstName: simulation.firstName, lastName: simulation.lastName, email: simulation.email,
                                             position: simulation.position, department: simulation.department)
        let from = "\(template.senderName) <\(template.senderEmail)>"
        let context = TemplateRenderer.context(person: person, url: "\(base)/api/phishing/track/click/\(simulation.token)",
                                               pixelURL: "\(base)/api/phishing/track/open/\(simulation.token)", from: from)
        var html = try TemplateRenderer.render(template.html, field: "html", context: context)
        if !template.html.contains("tracking_pixel") {
            let pixel = context["tracking_pixel"] as? String ?? ""
            if let body = html.range(of: "</body>", options: .caseInsensitive) { html.insert(contentsOf: pixel, at: body.lowerBound) }
            else { html += pixel }
        }
        var headers = profile.headers
        headers["X-Bulwark-Simulation"] = simulation.id!.uuidString
        return MailMessage(
            from: MailAddress(email: template.senderEmail, name: try TemplateRenderer.render(template.senderName, field: "sender_name", context: context)),
            to: [MailAddress(email: simulation.email, name: "\(simulation.firstName) \(simulation.lastName)")],
            subject: try TemplateRenderer.render(template.subject, field: "subject", context: context),
            text: try TemplateRenderer.render(template.text, field: "text", context: context), html: html, headers: headers,
            messageID: simulation.messageID, envelopeFrom: profile.envelopeFrom)
    }

    /// Campaigns whose every simulation has an outcome are `sent`; those that started are `sending`.
    private func markFinishedCampaigns() async throws {
        try await db.sql.raw("""
            UPDATE phishing_campaigns SET status = 'sent'
            WHERE status IN ('scheduled', 'sending')
              AND NOT EXISTS (SELECT 1 FROM phishing_simulations s WHERE s.campaign_id = phishing_campaigns.id
                              AND s.send_status IN ('queued', 'sending'))
            """).run()
        try await db.sql.raw("""
            UPDATE phishing_campaigns SET status = 'sending'
            WHERE status = 'scheduled'
              AND EXISTS (SELECT 1 FROM phishing_simulations s WHERE s.campaign_id = phishing_campaigns.id
                          AND s.send_status NOT IN ('queued', 'cancelled'))
            """).run()
    }
}

/// The result of one message, written through `Application.sendOutcomes`.
struct SendOutcome: Sendable {
    let simulationID: UUID
    let campaignID: UUID
    let clientID: UUID
    let worker: String
    let attempts: Int
    let outcome: MailOutcome
    let at: Date

    init(simulation: Simulation, worker: String, outcome: MailOutcome, at: Date) {
        simulationID = simulation.id!
        campaignID = simulation.$campaign.id
        clientID = simulation.clientID
        self.worker = worker
        attempts = simulation.attempts
        self.outcome = outcome
        self.at = at
    }

    /// Writes a batch of outcomes in the writer's transaction: the simulations, and one event each.
    /// Rows are updated in id order (as a cancel locks them), so concurrent writers and cancels never deadlock.
    static func write(_ outcomes: [SendOutcome], on db: any Database) async throws {
        var insert = db.sql.insert(into: PhishingEvent.schema)
            .columns("id", "simulation_id", "campaign_id", "client_id", "kind", "occurred_at", "is_bot", "details")
        for result in outcomes.sorted(by: { $0.simulationID.uuidString.lowercased() < $1.simulationID.uuidString.lowercased() }) {
            let kind: String
            let error: String?
            switch result.outcome {
            case .sent:
                kind = "sent"
                error = nil
                // It went out, whatever happened to the row meanwhile (a cancel after the message left): record it.
                try await db.sql.raw("""
                    UPDATE phishing_simulations SET send_status = 'sent', sent_at = \(bind: result.at), error = NULL,
                        stage = CASE WHEN stage < 1 THEN 1 ELSE stage END, claimed_by = NULL
                    WHERE id = \(bind: result.simulationID)
                    """).run()
            case let .temporaryFailure(reason):
                let attempts = result.attempts + 1
                let givesUp = attempts >= PhishingSender.maxAttempts
                kind = givesUp ? "error" : "deferred"
                error = givesUp ? "gave up after \(attempts) attempts: \(reason)" : reason
                try await db.sql.raw("""
                    UPDATE phishing_simulations SET attempts = \(bind: attempts), error = \(bind: error),
                        send_status = \(bind: givesUp ? "error" : "queued"), claimed_by = NULL,
                        send_at = \(bind: result.at.addingTimeInterval(pow(2, Double(attempts)) * 30))
                    WHERE id = \(bind: result.simulationID) AND send_status = 'sending' AND claimed_by = \(bind: result.worker)
                    """).run()
            case let .permanentFailure(reason):
                kind = "error"
                error = reason
                try await db.sql.raw("""
                    UPDATE phishing_simulations SET attempts = \(bind: result.attempts + 1), error = \(bind: reason),
                        send_status = 'error', claimed_by = NULL
                    WHERE id = \(bind: result.simulationID) AND send_status = 'sending' AND claimed_by = \(bind: result.worker)
                    """).run()
            }
            insert = insert.values(SQLBind(UUID()), SQLBind(result.simulationID), SQLBind(result.campaignID),
                                   SQLBind(result.clientID), SQLBind(kind), SQLBind(result.at), SQLBind(false), SQLBind(error))
        }
        try await insert.run()
    }
}

struct PhishingSendJob: JobHandler {
    static let kind = "phishing.send"

    func run(payload: String, context: JobContext) async throws {
        try await PhishingSender(context: context).sendDue()
    }

    /// SQLite, at start: simulations a dead process was sending go back to the queue. Those whose message was in
    /// flight when it died go out again (at most one per connection).
    func handBackAbandoned(db: any Database) async throws {
        try await db.sql.raw("""
            UPDATE phishing_simulations SET send_status = 'queued', claimed_by = NULL, claimed_at = NULL WHERE send_status = 'sending'
            """).run()
    }
}

extension Application {
    private struct SendOutcomesKey: StorageKey { typealias Value = GroupCommit<SendOutcome> }

    /// Created in `configure`; closed at shutdown after the job worker stopped.
    var sendOutcomes: GroupCommit<SendOutcome> {
        get { storage[SendOutcomesKey.self]! }
        set { storage[SendOutcomesKey.self] = newValue }
    }
}
