import Fluent
import SQLKit
import Vapor

/// Sends due simulations, campaign by campaign (several at once). A claim stamps each simulation with the worker's lease; each message's outcome is committed
/// (through a group-commit writer shared by the connections) before the next message goes out on that connection, so
/// after a crash at most the messages in flight (one per connection) go out again, and after SIGTERM none: the message
/// in hand is finished and recorded, the rest handed back. A connection that cannot be used (refused, TLS,
/// authentication, greeting) charges no message an attempt: the profile is paused and its messages wait. A campaign
/// whose own setup fails (its profile's password no longer opens) is paused alone; other tenants go on.
struct PhishingSender: Sendable {
    let context: JobContext

    /// Messages a round claims (shared among its campaigns). Each round ends with its slowest connection and starts
    /// with a claim, so fewer, larger rounds send faster: 800 gave 1,124-1,131 messages/s into a local sink, 1,600
    /// 1,166-1,236. The round's claims are renewed while it sends (`renewClaims`), so a slow relay cannot outlast them.
    static let batchSize = 1600
    /// SMTP connections a round uses at once (shared among its campaigns): each waits for its message's outcome to be
    /// durable before the next, so the rate is set by how many go side by side (into a local sink: four gave 550
    /// messages/s, eight 723, sixteen 712-1,017, thirty-two 1,068-1,124 on this noisy machine; mail servers commonly
    /// accept dozens of connections from one client, and a profile's throttle still bounds the rate).
    static let connections = 32
    /// The round's connections are shared among its campaigns, at least this many each: eight campaigns at once (on
    /// one profile, perhaps) open 32 sessions in all, not 256, which a mail server limiting each client would refuse.
    static let minimumConnections = 4
    static let maxAttempts = 5
    /// Longest pause of a profile or a campaign after repeated failures.
    static let maxPause: TimeInterval = 3600

    var app: Application { context.app }
    var db: any Database { context.app.db }

    /// Campaigns served at once; each gets an equal share of a batch, so one tenant's large or slow campaign (a server
    /// that answers a byte at a time) never holds up the others.
    static let campaignsAtOnce = 8

    /// One round: each due campaign's share of a batch, claimed one after the other (each sees what the previous ones
    /// took from a shared profile's throttle).
    private struct Round {
        var claims: [(campaignID: UUID, simulations: [Simulation])] = []
        var share = 0
        /// Campaigns with messages to send in this round.
        var sending: Int { claims.filter { !$0.simulations.isEmpty }.count }
        /// A campaign took its whole share: more is probably due.
        var full: Bool { claims.contains { $0.simulations.count >= share } }
    }

    /// Rounds one after the other. Claiming the next round while one sends was measured and left out: on SQLite the
    /// claim's update of 800 rows holds the writer while every connection waits for its outcome's commit (40,000
    /// messages: 960-1,004 messages/s with it, 1,068-1,095 without).
    @discardableResult
    func sendDue() async throws -> Int {
        var total = 0
        defer { app.phishingMetrics.sent.increment(by: Int64(total)) }
        while true {
            if context.shouldStop() { throw JobInterrupted() }
            let round = try await claimRound()
            if round.claims.allSatisfy({ $0.simulations.isEmpty }) { break }
            total += try await send(round)
            if context.shouldStop() { throw JobInterrupted() }
            if !round.full { break }
        }
        try await markFinishedCampaigns()
        return total
    }

    private func claimRound() async throws -> Round {
        let campaigns = try await dueCampaigns()
        var round = Round(share: max(Self.batchSize / max(campaigns.count, 1), 10))
        for campaignID in campaigns { round.claims.append((campaignID, try await claim(campaignID, limit: round.share))) }
        return round
    }

    /// The round's campaigns side by side; how many messages went out.
    private func send(_ round: Round) async throws -> Int {
        let connections = max(Self.minimumConnections, Self.connections / max(round.sending, 1))
        let renewal = Task { [self] in try await renewClaims(round.claims.flatMap { $0.simulations.map { $0.id! } }) }
        defer { renewal.cancel() }
        return try await withThrowingTaskGroup(of: Int.self) { group in
            for (campaignID, simulations) in round.claims where !simulations.isEmpty {
                group.addTask {
                    do {
                        return try await self.send(simulations, campaignID: campaignID, connections: connections)
                    } catch let error as CampaignSetupError {
                        try await self.pauseCampaign(campaignID, reason: error.reason)
                        try await self.handBack(simulations.map { $0.id! })
                        return 0
                    }
                }
            }
            return try await group.reduce(0, +)
        }
    }

    /// Campaigns that are sending, whose hold and profile pause are over, with a simulation due (or whose lease ran
    /// out: a worker that stopped without handing it back) and room left under their throttles, served in turn (the
    /// one served longest ago first), so neither a large backlog nor campaigns held back by a slow profile keep the
    /// others waiting. A campaign whose profile was deleted is included, so its setup error is recorded on it.
    /// Each kind of due simulation is its own `EXISTS`, a range of the (campaign, status, send time) index: as one
    /// `OR`, SQLite walked every simulation of a campaign scheduled for later (0.3 s at a million, every round).
    private func dueCampaigns() async throws -> [UUID] {
        let now = context.now
        let expired = now.addingTimeInterval(-context.lease)
        let candidates = try await db.sql.raw("""
            SELECT c.id FROM phishing_campaigns c
            LEFT JOIN phishing_sending_profiles p ON p.id = c.sending_profile_id
            WHERE c.status IN ('scheduled', 'sending')
              AND (c.send_retry_at IS NULL OR c.send_retry_at <= \(bind: now))
              AND (p.paused_until IS NULL OR p.paused_until <= \(bind: now))
              AND (EXISTS (SELECT 1 FROM phishing_simulations s WHERE s.campaign_id = c.id
                           AND s.send_status = 'queued' AND s.send_at <= \(bind: now))
                   OR EXISTS (SELECT 1 FROM phishing_simulations s WHERE s.campaign_id = c.id
                              AND s.send_status = 'sending' AND s.claimed_at < \(bind: expired)))
            ORDER BY CASE WHEN c.served_at IS NULL THEN 0 ELSE 1 END, c.served_at, c.launched_at, c.id
            LIMIT \(bind: Self.campaignsAtOnce * 4)
            """).all().map { try $0.decode(column: "id", as: UUID.self) }
        var chosen: [UUID] = []
        for id in candidates where chosen.count < Self.campaignsAtOnce {
            if try await throttleAllowance(id) > 0 { chosen.append(id) }
        }
        if !chosen.isEmpty {
            try await db.sql.raw("UPDATE phishing_campaigns SET served_at = \(bind: now) WHERE id IN (\(binds: chosen))").run()
        }
        return chosen
    }

    /// Claims up to `limit` of the campaign's due simulations for this worker, the clock read at the claim, within
    /// what the throttles leave.
    private func claim(_ campaignID: UUID, limit: Int) async throws -> [Simulation] {
        let limit = min(limit, try await throttleAllowance(campaignID))
        guard limit > 0 else { return [] }
        let now = context.now
        let expired = now.addingTimeInterval(-context.lease)
        let due: SQLQueryString = """
            SELECT s.id FROM phishing_simulations s
            WHERE s.campaign_id = \(bind: campaignID)
              AND ((s.send_status = 'queued' AND s.send_at <= \(bind: now))
                   OR (s.send_status = 'sending' AND s.claimed_at < \(bind: expired)))
              AND EXISTS (SELECT 1 FROM phishing_campaigns c WHERE c.id = s.campaign_id AND c.status IN ('scheduled', 'sending'))
            ORDER BY s.send_at LIMIT \(bind: limit)
            """
        let set: SQLQueryString = "SET send_status = 'sending', claimed_at = \(bind: now), claimed_by = \(bind: context.worker)"
        // On PostgreSQL a CTE, evaluated once (see `JobQueue.claim`): never more than the throttle allows.
        let ids = try await (db.sql.dialect.name == "postgresql"
            ? db.sql.raw("""
                WITH next AS (\(due) FOR UPDATE OF s SKIP LOCKED)
                UPDATE phishing_simulations \(set) FROM next WHERE phishing_simulations.id = next.id
                RETURNING phishing_simulations.id
                """)
            : db.sql.raw("UPDATE phishing_simulations \(set) WHERE id IN (\(due)) RETURNING id"))
            .all().map { try $0.decode(column: "id", as: UUID.self) }
        guard !ids.isEmpty else { return [] }
        return try await Simulation.query(on: db).filter(\.$id ~~ ids).sort(\.$sendAt).all()
    }

    private struct CampaignSetupError: Error { let reason: String }

    private func send(_ simulations: [Simulation], campaignID: UUID, connections: Int) async throws -> Int {
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
        let share = max(1, (work.count + connections - 1) / connections)
        let chunks = stride(from: 0, to: work.count, by: share).map { Array(work[$0..<min($0 + share, work.count)]) }
        let claims = stillClaimed()
        let results = try await withThrowingTaskGroup(of: ChunkResult.self) { group in
            for chunk in chunks { group.addTask { await self.send(chunk, through: mailer, claims: claims) } }
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
    /// outcome committed before the next. The check of a message is read while the previous outcome is written, so a
    /// cancel committed during that write is seen by this process's `StoppedCampaigns`, not by that read; another
    /// process's cancel may still let this message out (one per connection, as before).
    private func send(_ chunk: [(Simulation, MailMessage)], through mailer: any Mailer,
                      claims: CoalescingLookup<UUID, Bool>) async -> ChunkResult {
        var result = ChunkResult()
        var recorded = Set<Int>()
        var skipped = Set<Int>()
        // The next message's check, asked as this one's outcome goes to be written and read beside that write: one
        // after the other they were 5.6 and 11.6 ms of a message's 23 (32 connections into a local sink, SQLite).
        var nextCheck: (index: Int, claimed: Task<Bool, any Error>)?
        do {
            try await mailer.deliver(chunk.map(\.1), proceed: { index in
                if context.shouldStop() { return .stop }
                let asked = nextCheck?.index == index ? nextCheck?.claimed : nil
                nextCheck = nil
                let claimed = if let asked { try await asked.value } else { try await claims.value(for: chunk[index].0.id!) == true }
                guard claimed, !StoppedCampaigns.contains(chunk[index].0.$campaign.id) else {
                    skipped.insert(index)
                    return .skip
                }
                return .send
            }, record: { index, outcome in
                result.connected = true
                if index + 1 < chunk.count, let next = chunk[index + 1].0.id {
                    nextCheck = (index + 1, Task { try await claims.value(for: next) == true })
                }
                // Counted as recorded before the write: if the write fails, the message stays claimed (it may have
                // gone out) and waits for its lease, rather than going straight back to the queue.
                recorded.insert(index)
                try await submit(SendOutcome(simulation: chunk[index].0, worker: context.worker, outcome: outcome, at: context.now))
                if outcome == .sent { result.sent += 1 }
            })
        } catch let failure as SMTPError where failure.concernsConnection && !Task.isCancelled {
            result.connectionFailure = failure
        } catch let failure as SMTPError where !failure.concernsConnection {
            // A message-level error that broke the conversation: the message was charged by `record`.
        } catch {
            // Not the server's fault (the database, or the run was cancelled): no profile is paused for it.
            app.logger.warning("Sending stopped on one connection: \(String(describing: error))")
        }
        result.untried = chunk.indices.filter { !recorded.contains($0) && !skipped.contains($0) }.map { chunk[$0].0.id! }
        return result
    }

    /// Writes an outcome, retrying a failed write (the write is idempotent: it applies only while the row is ours).
    private func submit(_ outcome: SendOutcome) async throws {
        var delay = 0.1
        for attempt in 1...4 {
            do {
                return try await app.sendOutcomes.submit(outcome)
            } catch where attempt < 4 && !(error is GroupCommit<SendOutcome>.Closed) {
                try await Task.sleep(for: .seconds(delay))
                delay *= 3
            }
        }
    }

    /// Whether a simulation is still claimed by this worker and still sending: a cancel, a completion or a lost lease
    /// stops the message. Each check is read after it is asked for; the connections' checks asked meanwhile share
    /// one query (each connection asking alone queued its read behind the outcomes' writes).
    private func stillClaimed() -> CoalescingLookup<UUID, Bool> {
        CoalescingLookup { [db, worker = context.worker] ids in
            var asked = BoundRows(count: ids.count, on: db)
            asked.add(ids)
            // `CROSS JOIN`: SQLite then probes the simulations by id for each asked one (it would otherwise walk the
            // status index of every message being sent and scan the asked ids for each); PostgreSQL plans it as a join.
            let claimed = try await db.plainRows("""
                WITH v(id) AS (\(asked.table))
                SELECT s.id FROM v CROSS JOIN phishing_simulations s
                WHERE s.id = v.id AND s.send_status = 'sending' AND s.claimed_by = \(bind: worker)
                """, prepared: true) { try $0.next(UUID.self) }
            return Dictionary(claimed.map { ($0, true) }, uniquingKeysWith: { first, _ in first })
        }
    }

    /// Keeps the round's claims from looking abandoned while it sends: every third of a lease, the simulations still
    /// being sent by this worker get a fresh claim time, as the job's own lease gets a heartbeat. Without it, another
    /// worker took over the rest of a round that outlasted the lease (a slow relay), and the two split its messages.
    private func renewClaims(_ ids: [UUID]) async throws {
        guard !ids.isEmpty else { return }
        while true {
            try await Task.sleep(for: .seconds(context.heartbeatInterval))
            do {
                try await db.transaction { [context] db in
                    var claimed = BoundRows(count: ids.count, on: db)
                    claimed.add(ids)
                    try await db.useGenericPlans()
                    // On PostgreSQL rows are locked in id order, as the outcome writer and a stop lock them, and a row
                    // one of them holds is skipped (its claim is being settled): a plan's own order could deadlock.
                    let lock = db.sql.dialect.name == "postgresql" ? "ORDER BY s.id FOR NO KEY UPDATE OF s SKIP LOCKED" : ""
                    try await db.plainRun("""
                        WITH v(id) AS (\(claimed.table)),
                             held AS (SELECT s.id FROM v CROSS JOIN phishing_simulations s
                                      WHERE s.id = v.id AND s.send_status = 'sending' AND s.claimed_by = \(bind: context.worker)
                                      \(unsafeRaw: lock))
                        UPDATE phishing_simulations SET claimed_at = \(bind: context.now)
                        FROM held WHERE phishing_simulations.id = held.id
                        """, prepared: true)
                }
            } catch {
                // Tried again at the next beat; a lease that runs out meanwhile is what the check before each message is for.
                app.logger.warning("Renewing the claims of a sending round failed: \(String(describing: error))")
            }
        }
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

    /// Campaigns whose every simulation has an outcome (and whose launch has written them all) are `sent`; those that
    /// started are `sending`. Both ask for statuses by name, each an index probe: `NOT IN ('queued', 'cancelled')`
    /// walked every simulation of a scheduled campaign, a million of them every two seconds until its launch time.
    private func markFinishedCampaigns() async throws {
        try await db.sql.raw("""
            UPDATE phishing_campaigns SET status = 'sent'
            WHERE status IN ('scheduled', 'sending') AND launch_pending = \(bind: false)
              AND NOT EXISTS (SELECT 1 FROM phishing_simulations s WHERE s.campaign_id = phishing_campaigns.id
                              AND s.send_status IN ('queued', 'sending'))
            """).run()
        try await db.sql.raw("""
            UPDATE phishing_campaigns SET status = 'sending'
            WHERE status = 'scheduled'
              AND EXISTS (SELECT 1 FROM phishing_simulations s WHERE s.campaign_id = phishing_campaigns.id
                          AND s.send_status IN ('sending', 'sent', 'error'))
            """).run()
    }
}
