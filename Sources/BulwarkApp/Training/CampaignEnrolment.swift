import Fluent
import SQLKit
import Vapor

/// Enrolling a campaign's audience: a few thousand people at once while the request waits, everyone else by a job that
/// walks the audience in batches, each batch (all modules of its people) in its own transaction. Every insert skips
/// pairs that already exist, so a batch run twice, or by the request and the job at once, enrols nobody twice.
extension CampaignService {
    /// Users the campaign's audience names right now (active people of the client).
    func audienceQuery(of campaign: TrainingCampaign, on db: (any Database)? = nil) -> QueryBuilder<User> {
        Audience(type: campaign.audienceType, values: campaign.audienceValues).people(of: campaign.clientID, on: db ?? self.db)
    }

    /// Queues the job that enrols the whole audience; on `db` so it commits with the status move that needs it.
    static func queueEnrolment(of campaignID: UUID, on db: any Database, now: Date) async throws {
        try await JobQueue(db: db, clock: FixedClock(now), lease: 0)
            .enqueue(TrainingEnrolmentJob.kind, payload: TrainingEnrolmentJob.Payload(campaignId: campaignID),
                     uniqueKey: "\(TrainingEnrolmentJob.kind):\(campaignID)")
    }

    /// After a change to an active campaign (its audience or modules): the first people now, the rest by the job.
    func startEnrolment(of campaign: TrainingCampaign) async throws {
        try await Self.queueEnrolment(of: campaign.id!, on: db, now: now)
        await enrollFirstPeople(of: campaign)
    }

    /// Enrols the first people while the request waits. The change is already committed and its job queued, so a
    /// failure here is the job's to retry (and to record if it keeps failing), not a reason to answer 500.
    func enrollFirstPeople(of campaign: TrainingCampaign) async {
        do {
            try await enrollAudience(of: campaign, upTo: peopleEnrolledInline)
        } catch {
            Logger(label: "bulwark.training").warning("Enrolment of campaign \(campaign.id!) left to its job: \(String(reflecting: error))")
        }
    }

    /// Enrols audience members in every module, skipping existing enrolments, in batches of `batchSize` people, each
    /// batch in one transaction; stops after `upTo` people or when `shouldStop` says so. Returns the enrolments added.
    /// `newcomersOnly` (the recurring auto-enrolment) looks only at people with no enrolment in the campaign yet, so a
    /// large audience costs an index probe per person rather than a fresh insert attempt every minute.
    @discardableResult
    func enrollAudience(of campaign: TrainingCampaign, batchSize: Int = 500, upTo limit: Int = .max,
                        newcomersOnly: Bool = false,
                        shouldStop: @Sendable () -> Bool = { false }) async throws -> Int {
        var inserted = 0
        var seen = 0
        var lastID: UUID?
        while seen < limit {
            if shouldStop() { throw JobInterrupted() }
            let query = audienceQuery(of: campaign).field(\.$id).sort(\.$id).limit(min(batchSize, limit - seen))
            if newcomersOnly {
                query.filter(.sql(embed: """
                    NOT EXISTS (SELECT 1 FROM training_enrollments x WHERE x.campaign_id = \(bind: campaign.id!) AND x.user_id = users.id)
                    """))
            }
            if let lastID { query.filter(\.$id > lastID) }
            let userIDs = try await query.all().compactMap(\.id)
            guard let last = userIDs.last else { break }
            lastID = last
            seen += userIDs.count
            let rows = userIDs.flatMap { userID in campaign.moduleIDs.map { (userID, $0) } }
            let now = self.now
            try await db.transaction { db in
                for start in stride(from: 0, to: rows.count, by: batchSize) {
                    try await Self.enroll(Array(rows[start..<min(start + batchSize, rows.count)]), in: campaign, db: db, now: now)
                }
            }
            inserted += rows.count
        }
        return inserted
    }

    /// Inserts not-started enrolments for (user, module) pairs, skipping pairs the campaign already has.
    static func enroll(_ pairs: [(userID: UUID, moduleID: UUID)], in campaign: TrainingCampaign, db: any Database, now: Date) async throws {
        guard !pairs.isEmpty else { return }
        var insert = db.sql.insert(into: Enrollment.schema)
            .columns("id", "client_id", "campaign_id", "module_id", "user_id", "status", "progress", "attempts",
                     "completed_lessons", "due_at", "created_at")
        for (userID, moduleID) in pairs {
            insert = insert.values(SQLBind(UUID()), SQLBind(campaign.clientID), SQLBind(campaign.id!), SQLBind(moduleID),
                                   SQLBind(userID), SQLBind("not_started"), SQLBind(0), SQLBind(0), SQLBind("[]"),
                                   SQLBind(campaign.dueAt), SQLBind(now))
        }
        try await insert.ignoringConflicts(with: ["campaign_id", "module_id", "user_id"]).run()
    }
}

/// Enrols the whole audience of a campaign that became active (or changed while active). Handed back at shutdown
/// between batches; the next run starts again from the first person, skipping those already enrolled.
struct TrainingEnrolmentJob: JobHandler {
    static let kind = "training.enrol"

    struct Payload: Codable { var campaignId: UUID }

    func run(payload: String, context: JobContext) async throws {
        let id = try JSONDecoder().decode(Payload.self, from: Data(payload.utf8)).campaignId
        // Only an active campaign enrols: one paused or archived meanwhile is left as it is.
        guard let campaign = try await TrainingCampaign.find(id, on: context.app.db), campaign.status == "active",
              campaign.deletedAt == nil else { return }
        try await CampaignService(db: context.app.db, actor: .system, now: context.now)
            .enrollAudience(of: campaign, shouldStop: context.shouldStop)
    }
}
