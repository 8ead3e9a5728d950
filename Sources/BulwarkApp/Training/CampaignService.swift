import Fluent
import SQLKit
import Vapor

/// Training campaigns: who takes which modules by when, and their live figures.
struct CampaignService: Sendable {
    let db: any Database
    let actor: AuditActor
    let now: Date
    /// People enrolled before a launch or a change answers; the queued `TrainingEnrolmentJob` enrols the rest.
    var peopleEnrolledInline = 2_000

    /// Allowed status moves; launching (scheduled/active) enrols the audience once the start time has come.
    static let transitions: [String: Set<String>] = [
        "draft": ["scheduled", "active", "archived"],
        "scheduled": ["draft", "active", "archived"],
        "active": ["completed", "archived"],
        "completed": ["archived", "active"],
        "archived": [],
    ]

    /// The client's campaigns; deleted ones (tombstones kept for reports) are not among them.
    func campaigns(in client: Client) -> QueryBuilder<TrainingCampaign> {
        TrainingCampaign.query(on: db).filter(\.$clientID == client.id!).filter(\.$deletedAt == nil)
    }

    func campaign(_ rawID: String?, in client: Client) async throws -> TrainingCampaign {
        guard let id = rawID.flatMap(UUID.init(uuidString:)),
              let campaign = try await campaigns(in: client).filter(\.$id == id).first() else {
            throw APIError.notFound("Campaign")
        }
        return campaign
    }

    func list(in client: Client, status: String?, search: String?, page: PageParams) async throws -> PageResult<CampaignResponse> {
        let query = campaigns(in: client)
        if let status { query.filter(\.$status == status) } else { query.filter(\.$status != "archived") }
        if let search { query.search(search, in: ["name"]) }
        let (items, meta) = try await query.sort(\.$createdAt, .descending).sort(\.$id).pageOfModels(page)
        let stats = try await self.stats(for: items.compactMap(\.id))
        return PageResult(items: items.map { CampaignResponse($0, stats: stats[$0.id!] ?? CampaignStats()) }, meta: meta)
    }

    func response(_ campaign: TrainingCampaign) async throws -> CampaignResponse {
        CampaignResponse(campaign, stats: try await stats(for: [campaign.id!])[campaign.id!] ?? CampaignStats())
    }

    /// Live figures for several campaigns in two grouped queries.
    func stats(for ids: [UUID]) async throws -> [UUID: CampaignStats] {
        guard !ids.isEmpty else { return [:] }
        let rows = try await db.sql.raw("""
            SELECT campaign_id,
                   COUNT(*) AS assignments,
                   COUNT(DISTINCT user_id) AS enrolled,
                   CAST(SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END) AS BIGINT) AS completed,
                   CAST(SUM(CASE WHEN status = 'in_progress' THEN 1 ELSE 0 END) AS BIGINT) AS in_progress,
                   CAST(SUM(CASE WHEN status = 'not_started' THEN 1 ELSE 0 END) AS BIGINT) AS not_started,
                   CAST(SUM(CASE WHEN status <> 'completed' AND due_at < \(bind: now) THEN 1 ELSE 0 END) AS BIGINT) AS overdue,
                   CAST(AVG(CASE WHEN status = 'completed' THEN best_score END) AS DOUBLE PRECISION) AS average_score
            FROM training_enrollments WHERE campaign_id IN (\(binds: ids)) GROUP BY campaign_id
            """).all()
        var result: [UUID: CampaignStats] = [:]
        for row in rows {
            var stats = CampaignStats()
            stats.assignments = try row.decode(column: "assignments", as: Int.self)
            stats.enrolled = try row.decode(column: "enrolled", as: Int.self)
            stats.completed = try row.decode(column: "completed", as: Int?.self) ?? 0
            stats.inProgress = try row.decode(column: "in_progress", as: Int?.self) ?? 0
            stats.notStarted = try row.decode(column: "not_started", as: Int?.self) ?? 0
            stats.overdue = try row.decode(column: "overdue", as: Int?.self) ?? 0
            stats.averageScore = try (row.decode(column: "average_score", as: Double?.self)).map { ($0 * 10).rounded() / 10 }
            stats.completionRate = Percent.of(stats.completed, stats.assignments)
            result[try row.decode(column: "campaign_id", as: UUID.self)] = stats
        }
        return result
    }

    func create(_ input: CampaignInput, in client: Client, modules: ModuleService) async throws -> TrainingCampaign {
        let campaign = TrainingCampaign()
        campaign.clientID = client.id!
        campaign.status = "draft"
        campaign.createdBy = actor.userID
        let target = try await apply(input, to: campaign, in: client, modules: modules, creating: true)
        let actor = self.actor
        let now = self.now
        try await db.transaction { db in
            try await campaign.create(on: db)
            try await AuditService(db: db, now: now).record(
                AuditEvent("campaign.created", target: ("campaign", campaign.id), companyID: client.$company.id,
                           clientID: client.id, details: ["name": .string(campaign.name)]), by: actor)
        }
        if let target { try await move(campaign, to: target, in: client) }
        return campaign
    }

    func update(_ campaign: TrainingCampaign, with input: CampaignInput, in client: Client, modules: ModuleService) async throws -> TrainingCampaign {
        if campaign.status == "archived" { throw APIError.conflict("Archived campaigns cannot be changed.") }
        let target = try await apply(input, to: campaign, in: client, modules: modules, creating: false)
        let actor = self.actor
        let now = self.now
        // A change to an active campaign enrols whoever its audience now names and is not enrolled yet: the first
        // newcomers at once, everyone (all modules) by the job that commits with the change. A job with the same
        // modules and audience already queued or running covers it.
        let reenrol = campaign.status == "active" && (target == nil || target == campaign.status)
        try await db.transaction { db in
            try await campaign.save(on: db)
            try await AuditService(db: db, now: now).record(
                AuditEvent("campaign.updated", target: ("campaign", campaign.id), companyID: client.$company.id,
                           clientID: client.id), by: actor)
            if reenrol { try await Self.queueEnrolment(of: campaign, on: db, now: now) }
        }
        if let target, target != campaign.status { try await move(campaign, to: target, in: client) }
        else if reenrol { await enrollFirstPeople(of: campaign, newcomersOnly: true) }
        return campaign
    }

    /// Deletes as seed 000's DELETE means it: afterwards the campaign answers 404 and is in no list. A draft goes
    /// entirely; a campaign that ran stops (archived, no more reminders or escalations) and stays as a tombstone, so
    /// its enrolments, completions and certificates keep counting in reports.
    func delete(_ campaign: TrainingCampaign, in client: Client) async throws {
        let actor = self.actor
        let now = self.now
        let erase = campaign.status == "draft"
        try await db.transaction { db in
            if erase { try await campaign.delete(on: db) } else {
                campaign.status = "archived"
                campaign.deletedAt = now
                try await campaign.save(on: db)
            }
            try await AuditService(db: db, now: now).record(
                AuditEvent("campaign.deleted", target: ("campaign", campaign.id), companyID: client.$company.id,
                           clientID: client.id, details: ["had_run": .bool(!erase)]), by: actor)
        }
    }

    /// Validates every field at once; returns the requested status, applied by `move` after saving.
    private func apply(_ input: CampaignInput, to campaign: TrainingCampaign, in client: Client, modules: ModuleService,
                       creating: Bool) async throws -> String? {
        var errors = FieldErrors()
        let name = creating ? errors.required(input.name, field: "name", maxLength: 200) : errors.optional(input.name, field: "name", maxLength: 200)
        let description = errors.optional(input.description, field: "description", maxLength: 5000)
        var moduleIDs: [UUID]?
        if let raw = input.moduleIds {
            let ids = raw.compactMap(UUID.init(uuidString:))
            if raw.isEmpty { errors.add("module_ids", "Choose at least one module.") }
            else if ids.count != raw.count { errors.add("module_ids", "Every module id must be a valid identifier.") }
            else {
                let found = try await modules.visible(to: client).filter(\.$id ~~ ids).count()
                if found != Set(ids).count { errors.add("module_ids", "Every module must exist and be available to this organisation.") }
                else { moduleIDs = Array(NSOrderedSet(array: ids)) as? [UUID] }
            }
        } else if creating {
            errors.add("module_ids", "Choose at least one module.")
        }
        var audience: Audience?
        if let input = input.audience {
            audience = try await Audience.validate(input, clientID: client.id!, db: db, errors: &errors)
        }
        let startAt = input.startAt ?? (creating ? now : campaign.startAt)
        let dueAt = input.dueAt ?? (creating ? nil : campaign.dueAt)
        if dueAt == nil { errors.add("due_at", "The due_at field is required.") }
        if let dueAt, dueAt <= startAt { errors.add("due_at", "The due date must be after the start date.") }
        if let reminders = input.reminderDays, reminders.contains(where: { $0 < 1 || $0 > 365 }) {
            errors.add("reminder_days", "Reminder days must be between 1 and 365 days before the due date.")
        }
        var target: String?
        if let status = errors.oneOf(input.status, field: "status", allowed: TrainingCampaign.statuses) {
            let current = creating ? "draft" : campaign.status
            if status != current && !(Self.transitions[current] ?? []).contains(status) {
                errors.add("status", "A \(current) campaign cannot become \(status).")
            } else {
                target = status
            }
        }
        try errors.throwIfAny()
        if let name { campaign.name = name }
        if let description { campaign.description = description }
        if let moduleIDs { campaign.moduleIDs = moduleIDs }
        if let audience {
            campaign.audienceType = audience.type
            campaign.audienceValues = audience.values
        } else if creating {
            campaign.audienceType = "all"
            campaign.audienceValues = []
        }
        campaign.startAt = startAt
        campaign.dueAt = dueAt!
        if let reminders = input.reminderDays { campaign.reminderDays = Array(Set(reminders)).sorted(by: >) }
        else if creating { campaign.reminderDays = [] }
        if let autoEnroll = input.autoEnroll { campaign.autoEnroll = autoEnroll } else if creating { campaign.autoEnroll = true }
        return target
    }

    /// Applies a status move. Launching before the start date schedules; at or after it activates and enrols.
    func move(_ campaign: TrainingCampaign, to status: String, in client: Client) async throws {
        var status = status
        if status == "active" && campaign.startAt > now { status = "scheduled" }
        if status == "scheduled" && campaign.startAt <= now { status = "active" }
        let previous = campaign.status
        campaign.status = status
        if status == "active" && campaign.activatedAt == nil { campaign.activatedAt = now }
        if status == "completed" { campaign.completedAt = now }
        let actor = self.actor
        let now = self.now
        let newStatus = status
        let campaignID = campaign.id!
        // The status and the job that enrols the audience land together, so an active campaign never stays without
        // its audience after a crash; the enrolment itself runs in batches after the commit (a million people in one
        // transaction would hold the writer for minutes). The move applies only from the status read (a second
        // activation at once, by a scan or a person, changes nothing).
        try await db.transaction { db in
            guard try await db.sql.raw("""
                UPDATE training_campaigns SET status = \(bind: newStatus) WHERE id = \(bind: campaignID) AND status = \(bind: previous)
                RETURNING id
                """).first() != nil else {
                throw APIError.conflict("The campaign's status changed meanwhile; reload it and try again.")
            }
            try await campaign.save(on: db)
            try await AuditService(db: db, now: now).record(
                AuditEvent("campaign.status_changed", target: ("campaign", campaign.id), companyID: client.$company.id,
                           clientID: client.id, details: ["from": .string(previous), "to": .string(newStatus)]), by: actor)
            if newStatus == "active" { try await Self.queueEnrolment(of: campaign, on: db, now: now) }
        }
        if newStatus == "active" { await enrollFirstPeople(of: campaign) }
    }

    /// Recurring work: activate scheduled campaigns whose start has come; enrol newcomers of auto-enrolling ones (only
    /// when their people, the campaign or its enrolments changed since the last complete walk: `NewcomerWatch`).
    func synchronise(shouldStop: @Sendable () -> Bool = { false }) async throws {
        let due = try await TrainingCampaign.query(on: db).filter(\.$status == "scheduled").filter(\.$startAt <= now).all()
        for campaign in due {
            guard let client = try await Client.find(campaign.clientID, on: db) else { continue }
            do {
                try await move(campaign, to: "active", in: client)
            } catch let error as APIError where error.code == "CONFLICT" {
                continue // activated (or moved) by someone else meanwhile
            }
        }
        // Campaigns whose enrolment job is still walking the audience are left to it.
        let beingEnrolled = try await campaignsBeingEnrolled()
        let active = try await TrainingCampaign.query(on: db).filter(\.$status == "active").filter(\.$autoEnroll == true).all()
        for campaign in active where !beingEnrolled.contains(campaign.id!) {
            guard NewcomerWatch.isDue(campaign.id!, now: now, cadence: TrainingSyncJob.interval) else { continue }
            let fingerprint = try await NewcomerWatch.check(campaign, now: now, on: db)
            guard NewcomerWatch.mayHaveNewcomers(campaign.id!, fingerprint) else { continue }
            try await enrollAudience(of: campaign, newcomersOnly: true, shouldStop: shouldStop)
            try await NewcomerWatch.walkedAll(campaign, from: fingerprint, at: now, on: db)
        }
    }
}

/// Runs `CampaignService.synchronise` every minute (`interval`).
struct TrainingSyncJob: JobHandler {
    static let kind = "training.sync"
    static let interval: TimeInterval = 60

    func run(payload: String, context: JobContext) async throws {
        try await CampaignService(db: context.app.db, actor: .system, now: context.now).synchronise(shouldStop: context.shouldStop)
    }
}

extension Request {
    var campaignService: CampaignService { CampaignService(db: db, actor: auditActor, now: now) }
}
