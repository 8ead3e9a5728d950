import Fluent
import SQLKit
import Vapor

/// Sends due simulations in batches over one SMTP connection per campaign. Claiming marks a simulation `sending`
/// before any mail goes out and `sent` right after the server accepts it, so a restart never re-sends a finished
/// message and never forgets an unsent one; only a message interrupted between the server's 250 and our commit is
/// sent again after the lock expires (with the same Message-ID, so receiving systems can drop the duplicate).
struct PhishingSender: Sendable {
    let app: Application
    let now: Date

    static let batchSize = 200
    /// SMTP connections used at once for one batch; each carries a share of the batch in order.
    static let connections = 4
    static let staleAfter: TimeInterval = 300
    static let maxAttempts = 5

    @discardableResult
    func sendDue() async throws -> Int {
        var total = 0
        while true {
            let claimed = try await claim()
            if claimed.isEmpty { break }
            for (campaignID, simulations) in Dictionary(grouping: claimed, by: { $0.$campaign.id }) {
                total += try await send(simulations, campaignID: campaignID)
            }
            if claimed.count < Self.batchSize { break }
        }
        try await markFinishedCampaigns()
        return total
    }

    private func claim() async throws -> [Simulation] {
        let db = app.db
        let lock = db.sql.dialect.name == "postgresql" ? "FOR UPDATE SKIP LOCKED" : ""
        let stale = now.addingTimeInterval(-Self.staleAfter)
        let ids = try await db.sql.raw("""
            UPDATE phishing_simulations SET send_status = 'sending', claimed_at = \(bind: now)
            WHERE id IN (
                SELECT id FROM phishing_simulations
                WHERE (send_status = 'queued' AND send_at <= \(bind: now)) OR (send_status = 'sending' AND claimed_at < \(bind: stale))
                ORDER BY send_at LIMIT \(bind: Self.batchSize) \(unsafeRaw: lock)
            ) RETURNING id
            """).all().map { try $0.decode(column: "id", as: UUID.self) }
        guard !ids.isEmpty else { return [] }
        return try await Simulation.query(on: db).filter(\.$id ~~ ids).sort(\.$sendAt).all()
    }

    private func send(_ simulations: [Simulation], campaignID: UUID) async throws -> Int {
        let db = app.db
        guard let campaign = try await PhishingCampaign.find(campaignID, on: db),
              let profileID = campaign.sendingProfileID, let profile = try await SendingProfile.find(profileID, on: db) else {
            try await finish(simulations.map { ($0, .permanentFailure("campaign or sending profile missing")) })
            return 0
        }
        let templates = Dictionary(uniqueKeysWithValues: try await PhishingTemplate.query(on: db).filter(\.$id ~~ campaign.templateIDs).all().map { ($0.id!, $0) })
        var messages: [MailMessage] = []
        var sendable: [Simulation] = []
        var unsendable: [(Simulation, MailOutcome)] = []
        for simulation in simulations {
            guard let template = templates[simulation.templateID] else {
                unsendable.append((simulation, .permanentFailure("template missing")))
                continue
            }
            do {
                messages.append(try Self.message(for: simulation, template: template, campaign: campaign, profile: profile))
                sendable.append(simulation)
            } catch {
                unsendable.append((simulation, .permanentFailure("template could not be rendered: \(error)")))
            }
        }
        let outcomes = messages.isEmpty ? [] : await Self.sendInParallel(messages, mailer: try SendingProfileMailer.mailer(for: profile, app: app))
        try await finish(Array(zip(sendable, outcomes)) + unsendable)
        let sent = outcomes.filter { $0 == .sent }.count
        app.phishingMetrics.sent.increment(by: Int64(sent))
        return sent
    }

    /// Splits a batch over a few connections and returns the outcomes in the batch's order.
    static func sendInParallel(_ messages: [MailMessage], mailer: any Mailer) async -> [MailOutcome] {
        let share = max(1, (messages.count + connections - 1) / connections)
        let chunks = stride(from: 0, to: messages.count, by: share).map { Array(messages[$0..<min($0 + share, messages.count)]) }
        var results = [[MailOutcome]](repeating: [], count: chunks.count)
        await withTaskGroup(of: (Int, [MailOutcome]).self) { group in
            for (index, chunk) in chunks.enumerated() {
                group.addTask { (index, await mailer.send(chunk)) }
            }
            for await (index, outcomes) in group { results[index] = outcomes }
        }
        return results.flatMap { $0 }
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

    /// Records a batch's outcomes in one transaction (a commit per message would make the database the bottleneck).
    private func finish(_ results: [(Simulation, MailOutcome)]) async throws {
        guard !results.isEmpty else { return }
        let now = self.now
        try await app.db.transaction { db in
            for (simulation, outcome) in results {
                switch outcome {
                case .sent:
                    simulation.sendStatus = "sent"
                    simulation.stage = max(simulation.stage, Simulation.Stage.sent.rawValue)
                    simulation.sentAt = now
                    simulation.error = nil
                case let .temporaryFailure(reason):
                    simulation.attempts += 1
                    if simulation.attempts >= Self.maxAttempts {
                        simulation.sendStatus = "error"
                        simulation.error = "gave up after \(simulation.attempts) attempts: \(reason)"
                    } else {
                        simulation.sendStatus = "queued"
                        simulation.sendAt = now.addingTimeInterval(pow(2, Double(simulation.attempts)) * 30)
                        simulation.error = reason
                    }
                case let .permanentFailure(reason):
                    simulation.attempts += 1
                    simulation.sendStatus = "error"
                    simulation.error = reason
                }
                try await simulation.save(on: db)
            }
            var insert = db.sql.insert(into: PhishingEvent.schema)
                .columns("id", "simulation_id", "campaign_id", "client_id", "kind", "occurred_at", "is_bot", "details")
            for (simulation, _) in results {
                let kind = simulation.sendStatus == "sent" ? "sent" : (simulation.sendStatus == "error" ? "error" : "deferred")
                insert = insert.values(SQLBind(UUID()), SQLBind(simulation.id!), SQLBind(simulation.$campaign.id), SQLBind(simulation.clientID),
                                       SQLBind(kind), SQLBind(now), SQLBind(false), SQLBind(simulation.error))
            }
            try await insert.run()
        }
    }

    private func markFinishedCampaigns() async throws {
        let sending = try await PhishingCampaign.query(on: app.db).filter(\.$status ~~ ["scheduled", "sending"]).all()
        for campaign in sending {
            let open = try await Simulation.query(on: app.db).filter(\.$campaign.$id == campaign.id!)
                .filter(\.$sendStatus ~~ ["queued", "sending"]).count()
            let started = try await Simulation.query(on: app.db).filter(\.$campaign.$id == campaign.id!)
                .filter(\.$sendStatus != "queued").count()
            let status = open == 0 ? "sent" : (started > 0 ? "sending" : campaign.status)
            if status != campaign.status {
                campaign.status = status
                try await campaign.save(on: app.db)
            }
        }
    }
}

struct PhishingSendJob: JobHandler {
    static let kind = "phishing.send"

    func run(payload: String, app: Application, now: Date) async throws {
        try await PhishingSender(app: app, now: now).sendDue()
    }
}
