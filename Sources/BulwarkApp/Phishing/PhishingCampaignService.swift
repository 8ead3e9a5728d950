import Fluent
import SQLKit
import Vapor

/// Phishing campaigns: audience, templates, sending window and throttle, lifecycle, progress.
struct PhishingCampaignService: Sendable {
    let db: any Database
    let actor: AuditActor
    let now: Date
    let defaultTrackingURL: String
    /// People whose simulations a launch writes before it answers; the queued `PhishingLaunchJob` writes the rest.
    var peopleLaunchedInline = PhishingLaunch.peopleInline

    func campaigns(in client: Client) -> QueryBuilder<PhishingCampaign> {
        PhishingCampaign.query(on: db).filter(\.$clientID == client.id!)
    }

    func campaign(_ rawID: String?, in client: Client) async throws -> PhishingCampaign {
        guard let id = rawID.flatMap(UUID.init(uuidString:)),
              let campaign = try await campaigns(in: client).filter(\.$id == id).first() else { throw APIError.notFound("Campaign") }
        return campaign
    }

    func progress(for ids: [UUID]) async throws -> [UUID: PhishingProgress] {
        guard !ids.isEmpty else { return [:] }
        let rows = try await db.sql.raw("""
            SELECT campaign_id, COUNT(*) AS total,
              CAST(SUM(CASE WHEN send_status IN ('queued', 'sending') THEN 1 ELSE 0 END) AS BIGINT) AS queued,
              CAST(SUM(CASE WHEN send_status = 'sent' THEN 1 ELSE 0 END) AS BIGINT) AS sent,
              CAST(SUM(CASE WHEN send_status = 'error' THEN 1 ELSE 0 END) AS BIGINT) AS errors,
              CAST(SUM(CASE WHEN send_status = 'cancelled' THEN 1 ELSE 0 END) AS BIGINT) AS cancelled,
              CAST(SUM(CASE WHEN stage >= 2 THEN 1 ELSE 0 END) AS BIGINT) AS opened,
              CAST(SUM(CASE WHEN stage >= 3 THEN 1 ELSE 0 END) AS BIGINT) AS clicked,
              CAST(SUM(CASE WHEN stage >= 4 THEN 1 ELSE 0 END) AS BIGINT) AS submitted,
              CAST(SUM(CASE WHEN reported_at IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT) AS reported
            FROM phishing_simulations WHERE campaign_id IN (\(binds: ids)) GROUP BY campaign_id
            """).all()
        var result: [UUID: PhishingProgress] = [:]
        for row in rows {
            func int(_ column: String) throws -> Int { try row.decode(column: column, as: Int?.self) ?? 0 }
            result[try row.decode(column: "campaign_id", as: UUID.self)] = PhishingProgress(
                total: try int("total"), queued: try int("queued"), sent: try int("sent"), errors: try int("errors"),
                cancelled: try int("cancelled"), opened: try int("opened"), clicked: try int("clicked"),
                submitted: try int("submitted"), reported: try int("reported"))
        }
        // While a launch is still writing its audience, the people not written yet count as queued.
        for row in try await db.sql.raw("""
            SELECT id, launch_planned FROM phishing_campaigns WHERE id IN (\(binds: ids)) AND launch_pending = \(bind: true)
            """).all() {
            let id = try row.decode(column: "id", as: UUID.self)
            let planned = try row.decode(column: "launch_planned", as: Int?.self) ?? 0
            var progress = result[id] ?? PhishingProgress()
            let unwritten = max(0, planned - progress.total)
            progress.total += unwritten
            progress.queued += unwritten
            result[id] = progress
        }
        return result
    }

    func response(_ campaign: PhishingCampaign) async throws -> PhishingCampaignResponse {
        PhishingCampaignResponse(campaign, progress: try await progress(for: [campaign.id!])[campaign.id!] ?? PhishingProgress())
    }

    func create(_ input: PhishingCampaignInput, in client: Client, templates: PhishingTemplateService, modules: ModuleService) async throws -> PhishingCampaign {
        let campaign = PhishingCampaign()
        campaign.sendFailures = 0
        campaign.clientID = client.id!
        campaign.status = "draft"
        campaign.createdBy = actor.userID
        try await apply(input, to: campaign, in: client, templates: templates, modules: modules, creating: true)
        try await save(campaign, action: "phishing_campaign.created", client: client)
        return campaign
    }

    func update(_ campaign: PhishingCampaign, with input: PhishingCampaignInput, in client: Client, templates: PhishingTemplateService,
                modules: ModuleService) async throws -> PhishingCampaign {
        guard campaign.status == "draft" else { throw APIError.conflict("Only draft campaigns can be changed; this one is \(campaign.status).") }
        try await apply(input, to: campaign, in: client, templates: templates, modules: modules, creating: false)
        try await save(campaign, action: "phishing_campaign.updated", client: client)
        return campaign
    }

    private func save(_ campaign: PhishingCampaign, action: String, client: Client, details: [String: JSONValue]? = nil) async throws {
        let actor = self.actor
        let now = self.now
        try await db.transaction { db in
            try await campaign.save(on: db)
            try await AuditService(db: db, now: now).record(
                AuditEvent(action, target: ("phishing_campaign", campaign.id), companyID: client.$company.id, clientID: client.id,
                           details: details ?? ["name": .string(campaign.name)]), by: actor)
        }
    }

    private func apply(_ input: PhishingCampaignInput, to campaign: PhishingCampaign, in client: Client,
                       templates: PhishingTemplateService, modules: ModuleService, creating: Bool) async throws {
        var errors = FieldErrors()
        let name = creating ? errors.required(input.name, field: "name", maxLength: 200) : errors.optional(input.name, field: "name", maxLength: 200)
        var templateIDs: [UUID]?
        if let raw = input.templateIds {
            let ids = raw.compactMap(UUID.init(uuidString:))
            if raw.isEmpty || ids.count != raw.count { errors.add("template_ids", "List at least one valid template id.") }
            else if try await templates.visible(to: client).filter(\.$id ~~ ids).count() != Set(ids).count {
                errors.add("template_ids", "Every template must exist and be available to this organisation.")
            } else { templateIDs = ids }
        } else if creating { errors.add("template_ids", "Choose at least one template.") }
        let assignment = errors.oneOf(input.templateAssignment, field: "template_assignment", allowed: ["random", "ab"])
        var audience: Audience?
        if let input = input.audience {
            audience = try await Audience.validate(input, clientID: client.id!, db: db, errors: &errors)
        }
        var profileID: UUID?
        if let raw = input.sendingProfileId {
            if let id = UUID(uuidString: raw), try await SendingProfile.query(on: db).filter(\.$id == id).filter(\.$clientID == client.id!).first() != nil {
                profileID = id
            } else { errors.add("sending_profile_id", "The sending profile does not exist in this organisation.") }
        }
        let launch = input.launchAt ?? campaign.launchAt
        if let sendBy = input.sendBy, sendBy <= (launch ?? now) { errors.add("send_by", "The send_by time must be after the launch.") }
        let throttle = errors.range(input.throttlePerMinute, field: "throttle_per_minute", min: 1, max: 1_000_000)
        var moduleID: UUID?
        if let raw = input.trainingModuleId {
            if let id = UUID(uuidString: raw), try await modules.visible(to: client).filter(\.$id == id).first() != nil { moduleID = id }
            else { errors.add("training_module_id", "The training module does not exist or is not available.") }
        }
        if let url = input.trackingUrl {
            if URL(string: url).map({ ["http", "https"].contains($0.scheme ?? "") && $0.host != nil }) != true {
                errors.add("tracking_url", "The tracking_url must be an absolute http(s) URL.")
            }
        }
        try errors.throwIfAny()
        if let name { campaign.name = name }
        if let templateIDs { campaign.templateIDs = templateIDs }
        if let assignment { campaign.templateAssignment = assignment } else if creating { campaign.templateAssignment = "random" }
        if let audience {
            campaign.audienceType = audience.type
            campaign.audienceValues = audience.values
        } else if creating {
            campaign.audienceType = "all"
            campaign.audienceValues = []
        }
        if let profileID { campaign.sendingProfileID = profileID }
        if let launchAt = input.launchAt { campaign.launchAt = launchAt }
        if let sendBy = input.sendBy { campaign.sendBy = sendBy }
        if let throttle { campaign.throttlePerMinute = throttle }
        if let moduleID { campaign.trainingModuleID = moduleID }
        if let url = input.trackingUrl { campaign.trackingBaseURL = url.hasSuffix("/") ? String(url.dropLast()) : url }
        else if creating { campaign.trackingBaseURL = defaultTrackingURL }
    }

    /// Launches: one simulation per person with an unguessable token, send times spread over the window under the
    /// throttle, and the status change, in one transaction: a crash leaves either a draft or a launched campaign. The
    /// status is moved by a conditional update, so two launches at once create one set of simulations.
    func launch(_ campaign: PhishingCampaign, in client: Client) async throws {
        guard campaign.status == "draft" else { throw APIError.conflict("This campaign was already launched (\(campaign.status)).") }
        guard let profileID = campaign.sendingProfileID, let profile = try await SendingProfile.find(profileID, on: db) else {
            throw APIError.validation(["sending_profile_id": ["Choose a sending profile before sending."]])
        }
        let now = self.now
        let start = max(now, campaign.launchAt ?? now)
        let status = start > now ? "scheduled" : "sending"
        let actor = self.actor
        let domain = profile.envelopeFrom.split(separator: "@").last.map(String.init) ?? "bulwark.local"
        let perMinute = Double(campaign.throttlePerMinute ?? profile.throttlePerMinute)
        try await db.transaction { db in
            guard try await db.sql.raw("""
                UPDATE phishing_campaigns SET status = \(bind: status), launched_at = \(bind: now), updated_at = \(bind: now)
                WHERE id = \(bind: campaign.id!) AND status = 'draft' RETURNING id
                """).first() != nil else {
                throw APIError.conflict("This campaign was already launched.")
            }
            // The audience is written in batches by id (a million people in one transaction held SQLite's only
            // writer for minutes): the first while the request waits, the rest by a job queued with this change.
            let audience = Audience(type: campaign.audienceType, values: campaign.audienceValues)
            let count = try await audience.people(of: client.id!, on: db).count()
            guard count > 0 else { throw APIError.conflict("The audience has nobody in it.") }
            var spacing = 60 / perMinute
            if let sendBy = campaign.sendBy { spacing = max(spacing, sendBy.timeIntervalSince(start) / Double(count)) }
            let plan = PhishingLaunchPlan(campaignID: campaign.id!, start: start, spacing: spacing, count: count, domain: domain)
            if try await PhishingLaunch.write(plan, campaign: campaign, db: db, transactions: false, limit: peopleLaunchedInline) {
                try await PhishingLaunch.queueJob(plan, on: db, now: now)
            }
            try await AuditService(db: db, now: now).record(
                AuditEvent("phishing_campaign.launched", target: ("phishing_campaign", campaign.id), companyID: client.$company.id,
                           clientID: client.id, details: ["recipients": .number(Double(count)),
                                                          "first_send_at": .string(ISO8601.string(start))]), by: actor)
        }
        campaign.status = status
        campaign.launchedAt = now
    }

    /// Complete: stop sending what has not gone, and stop recording; results stay.
    func complete(_ campaign: PhishingCampaign, in client: Client) async throws {
        try await stop(campaign, in: client, to: "completed", from: ["scheduled", "sending", "sent"],
                       refusal: "Only a launched campaign can be completed; this one is \(campaign.status).")
    }

    /// Cancel (DELETE): unsent messages stop; sent ones keep being tracked; results stay.
    func cancel(_ campaign: PhishingCampaign, in client: Client) async throws {
        try await stop(campaign, in: client, to: "cancelled", from: ["draft", "scheduled", "sending", "sent"],
                       refusal: "The campaign is already \(campaign.status).")
    }

    /// One transaction: the status moves only from an allowed one, and every simulation not yet sent (waiting, or
    /// claimed by a sender) is cancelled with it. A sender checks each message before it goes out (this process's
    /// senders also ask `StoppedCampaigns`), so at most the messages already on the wire (one per connection) still
    /// leave.
    private func stop(_ campaign: PhishingCampaign, in client: Client, to status: String, from allowed: [String],
                      refusal: String) async throws {
        let now = self.now
        let actor = self.actor
        let stampColumn = status == "completed" ? "completed_at" : "cancelled_at"
        try await db.transaction { db in
            guard try await db.sql.raw("""
                UPDATE phishing_campaigns SET status = \(bind: status), \(ident: stampColumn) = \(bind: now), updated_at = \(bind: now)
                WHERE id = \(bind: campaign.id!) AND status IN (\(binds: allowed)) RETURNING id
                """).first() != nil else { throw APIError.conflict(refusal) }
            // Rows are locked in id order, the order the outcome writer uses too, so the two never deadlock.
            let lock = db.sql.dialect.name == "postgresql" ? "ORDER BY id FOR UPDATE" : ""
            try await db.sql.raw("""
                UPDATE phishing_simulations SET send_status = 'cancelled', claimed_by = NULL
                WHERE id IN (SELECT id FROM phishing_simulations
                             WHERE campaign_id = \(bind: campaign.id!) AND send_status IN ('queued', 'sending') \(unsafeRaw: lock))
                """).run()
            try await AuditService(db: db, now: now).record(
                AuditEvent("phishing_campaign.\(status)", target: ("phishing_campaign", campaign.id), companyID: client.$company.id,
                           clientID: client.id, details: ["name": .string(campaign.name)]), by: actor)
        }
        StoppedCampaigns.note(campaign.id!)
        campaign.status = status
        if status == "completed" { campaign.completedAt = now } else { campaign.cancelledAt = now }
    }
}

extension Request {
    var phishingCampaigns: PhishingCampaignService {
        PhishingCampaignService(db: db, actor: auditActor, now: now, defaultTrackingURL: application.settings.publicBaseURL)
    }
}
