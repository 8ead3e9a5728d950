import Crypto
import Fluent
import SQLKit
import Vapor

/// Enrolling a campaign's audience: a few thousand people at once while the request waits, everyone else by a job that
/// walks the audience in batches, each batch (all modules of its people) in its own transaction. Every insert skips
/// pairs that already exist, so a batch run twice, or by the request and the job at once, enrols nobody twice.
extension CampaignService {
    /// Users the campaign's audience names right now (active people of the client).
    func audienceQuery(of campaign: TrainingCampaign, on db: (any Database)? = nil) -> QueryBuilder<User> {
        campaign.audience.people(of: campaign.clientID, on: db ?? self.db)
    }

    /// Queues the job that enrols the whole audience; on `db` so it commits with the change that needs it. The job's key
    /// names what it enrols (modules and audience): a change of either while a job runs queues another, which walks the
    /// audience again after it, so nobody keeps only the old modules.
    static func queueEnrolment(of campaign: TrainingCampaign, on db: any Database, now: Date) async throws {
        let id = campaign.id!
        try await JobQueue(db: db, clock: FixedClock(now), lease: 0)
            .enqueue(TrainingEnrolmentJob.kind, payload: TrainingEnrolmentJob.Payload(campaignId: id),
                     uniqueKey: "\(TrainingEnrolmentJob.kind):\(id):\(enrolmentFingerprint(of: campaign))")
    }

    /// What enrolment depends on: the modules and the audience.
    static func enrolmentFingerprint(of campaign: TrainingCampaign) -> String {
        let described = campaign.moduleIDsJSON + "|" + campaign.audienceType + "|" + campaign.audienceValuesJSON
        return String(SHA256.hash(data: Data(described.utf8)).hexString.prefix(16))
    }

    /// Campaigns whose enrolment job is queued or running (their audience is being walked already).
    func campaignsBeingEnrolled() async throws -> Set<UUID> {
        let rows = try await db.sql.raw("""
            SELECT unique_key FROM jobs WHERE kind = \(bind: TrainingEnrolmentJob.kind) AND status IN ('queued', 'running')
            """).all()
        return Set(try rows.compactMap { row in
            try row.decode(column: "unique_key", as: String?.self).flatMap { key in
                key.split(separator: ":").dropFirst().first.flatMap { UUID(uuidString: String($0)) }
            }
        })
    }

    /// Enrols the first people while the request waits. The change is already committed and its job queued, so a
    /// failure here is the job's to retry (and to record if it keeps failing), not a reason to answer 500.
    func enrollFirstPeople(of campaign: TrainingCampaign, newcomersOnly: Bool = false) async {
        do {
            try await enrollAudience(of: campaign, upTo: peopleEnrolledInline, newcomersOnly: newcomersOnly)
        } catch {
            Logger(label: "bulwark.training").warning("Enrolment of campaign \(campaign.id!) left to its job: \(String(reflecting: error))")
        }
    }

    /// Enrols audience members in every module, skipping existing enrolments, in batches of `batchSize` people, each
    /// batch in one transaction; stops after `upTo` people or when `shouldStop` says so. Returns the enrolments added.
    /// `newcomersOnly` (the recurring auto-enrolment) looks only at people with no enrolment in the campaign yet, so a
    /// large audience costs an index probe per person rather than a fresh insert attempt every minute. With
    /// `rereading` (a long walk) the campaign is read again before each batch: a change of its modules applies from the
    /// next batch, and a campaign no longer active (completed, archived, deleted) stops the walk.
    @discardableResult
    func enrollAudience(of campaign: TrainingCampaign, batchSize: Int = 500, upTo limit: Int = .max,
                        newcomersOnly: Bool = false, rereading: Bool = false,
                        shouldStop: @Sendable () -> Bool = { false }) async throws -> Int {
        var campaign = campaign
        var inserted = 0
        var seen = 0
        var lastID: UUID?
        while seen < limit {
            if shouldStop() { throw JobInterrupted() }
            if rereading {
                guard let fresh = try await TrainingCampaign.find(campaign.id, on: db), fresh.status == "active",
                      fresh.deletedAt == nil else { break }
                campaign = fresh
            }
            let query = campaign.audience.peopleIDs(of: campaign.clientID, after: lastID, limit: min(batchSize, limit - seen), on: db)
            if newcomersOnly {
                query.filter(.sql(embed: """
                    NOT EXISTS (SELECT 1 FROM training_enrollments x WHERE x.campaign_id = \(bind: campaign.id!) AND x.user_id = users.id)
                    """))
            }
            let userIDs = try await query.all().compactMap(\.id)
            guard let last = userIDs.last else { break }
            lastID = last
            seen += userIDs.count
            let rows = userIDs.flatMap { userID in campaign.moduleIDs.map { (userID, $0) } }
            let now = self.now
            let current = campaign
            try await db.transaction { db in
                for start in stride(from: 0, to: rows.count, by: batchSize) {
                    try await Self.enroll(Array(rows[start..<min(start + batchSize, rows.count)]), in: current, db: db, now: now)
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
            insert = insert.values(SQLBind(UUID.timeOrdered()), SQLBind(campaign.clientID), SQLBind(campaign.id!), SQLBind(moduleID),
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
        // Only an active campaign enrols: one completed or archived meanwhile (even mid-walk) is left as it is.
        guard let campaign = try await TrainingCampaign.find(id, on: context.app.db), campaign.status == "active",
              campaign.deletedAt == nil else { return }
        // The job walks the whole audience: for the minutely sync that is a complete walk, so it does not walk the
        // same million people again a minute later (that second walk held a connection through the lists measured
        // meanwhile).
        let fingerprint = try await NewcomerWatch.fingerprint(of: campaign, on: context.app.db)
        try await CampaignService(db: context.app.db, actor: .system, now: context.now)
            .enrollAudience(of: campaign, rereading: true, shouldStop: context.shouldStop)
        if campaign.autoEnroll { try await NewcomerWatch.walkedAll(campaign, from: fingerprint, at: context.now, on: context.app.db) }
    }
}
