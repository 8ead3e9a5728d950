import Fluent
import SQLKit
import Vapor

/// How a launched campaign's simulations are laid out: who gets which send slot and template. Written once at launch
/// (in the launch's transaction, as the payload of the job that finishes it), so the people inserted while the request
/// waits and those the job inserts later follow one plan, and a job run twice writes the same rows.
///
/// People are walked by id; walk position `i` gets send slot `(multiplier * i + offset) mod count`, a permutation
/// of the slots (the multiplier is prime to `count`) so sends stay exactly `spacing` apart while their order follows
/// neither department nor sign-up order. The walk's cursor (last id, next position) is saved on the campaign with
/// each batch, so positions only grow and a resumed walk never gives two people one slot: someone who left the
/// audience meanwhile leaves a gap, someone who joined it (with an id after the cursor) takes a position at the end.
struct PhishingLaunchPlan: Codable, Sendable {
    var campaignId: UUID
    var start: Date
    var spacing: TimeInterval
    var count: Int
    var multiplier: Int
    var offset: Int
    var domain: String

    init(campaignID: UUID, start: Date, spacing: TimeInterval, count: Int, domain: String) {
        self.campaignId = campaignID
        self.start = start
        self.spacing = spacing
        self.count = count
        self.domain = domain
        var multiplier = count > 1 ? Int.random(in: 1..<count) : 1
        while Self.gcd(multiplier, count) != 1 { multiplier += 1 }
        self.multiplier = multiplier
        self.offset = count > 0 ? Int.random(in: 0..<count) : 0
    }

    func sendAt(position: Int) -> Date {
        let slot = position < count ? (multiplier * position % count + offset) % count : position
        return start.addingTimeInterval(Double(slot) * spacing)
    }

    private static func gcd(_ a: Int, _ b: Int) -> Int { b == 0 ? a : gcd(b, a % b) }
}

enum PhishingLaunch {
    /// People whose simulations are written while the launch request waits (by default); the job writes the rest.
    static let peopleInline = 2_000
    static let batchSize = 500

    /// The walk's saved cursor: the last person written and the position after them.
    struct Cursor: Sendable {
        var after: UUID?
        var position = 0
    }

    /// Writes simulations for the audience walked by id from `cursor`, batch by batch, each batch its own transaction
    /// when `transactions` is set (the job) or all on `db` (the launch's own transaction), saving the cursor with each
    /// batch. Existing (campaign, person) pairs are skipped, so a batch run twice writes nobody twice. Stops after
    /// `limit` people, when the campaign no longer sends, or when `shouldStop` says so. Returns whether people may
    /// remain (the limit was reached).
    static func write(_ plan: PhishingLaunchPlan, campaign: PhishingCampaign, from cursor: Cursor = Cursor(), db: any Database,
                      transactions: Bool, limit: Int = .max, shouldStop: @Sendable () -> Bool = { false }) async throws -> Bool {
        let audience = Audience(type: campaign.audienceType, values: campaign.audienceValues)
        var cursor = cursor
        var walked = 0
        while walked < limit {
            if shouldStop() { throw JobInterrupted() }
            // Names and addresses are read with the walk, before the batch's transaction takes the writer (decoding
            // 500 people held it while the sender's outcomes waited).
            let people = try await audience.peopleIDs(of: campaign.clientID, after: cursor.after, limit: min(batchSize, limit - walked), on: db)
                .field(\.$email).field(\.$firstName).field(\.$lastName).field(\.$department).field(\.$position).all()
            guard let last = people.last?.id else { return false }
            let first = cursor.position
            let next = Cursor(after: last, position: first + people.count)
            let batch: @Sendable (any Database) async throws -> Bool = { db in
                guard try await advance(plan.campaignId, to: next, on: db) else { return false }
                try await insertSimulations(for: people, from: first, plan: plan, audience: audience, campaign: campaign, on: db)
                return true
            }
            guard try await (transactions ? db.transaction(batch) : batch(db)) else { return false }
            cursor = next
            walked += people.count
        }
        return true
    }

    /// Saves the cursor, if the campaign still sends. The batch's first statement, and a write: it takes the writer's
    /// lock before anything is read (on SQLite a transaction that reads first cannot wait for a concurrent writer, it
    /// fails), and on PostgreSQL it holds the campaign row until the batch commits, so a cancel waits and then cancels
    /// this batch's mail too. No batch adds queued mail to a campaign completed or cancelled before it.
    private static func advance(_ campaignID: UUID, to cursor: Cursor, on db: any Database) async throws -> Bool {
        try await db.sql.raw("""
            UPDATE phishing_campaigns SET launch_after = \(bind: cursor.after), launch_position = \(bind: cursor.position)
            WHERE id = \(bind: campaignID) AND status IN ('scheduled', 'sending') RETURNING id
            """).first() != nil
    }

    static func savedCursor(of campaignID: UUID, on db: any Database) async throws -> Cursor {
        guard let row = try await db.sql.raw("""
            SELECT launch_after, launch_position FROM phishing_campaigns WHERE id = \(bind: campaignID)
            """).first() else { return Cursor() }
        return Cursor(after: try row.decodeNil(column: "launch_after") ? nil : try row.decodeUUID(column: "launch_after"),
                      position: try row.decode(column: "launch_position", as: Int.self))
    }

    private static func insertSimulations(for walked: [User], from first: Int, plan: PhishingLaunchPlan, audience: Audience,
                                          campaign: PhishingCampaign, on db: any Database) async throws {
        // Who is still in the audience is read in the batch's transaction, so nobody named has gone meanwhile.
        let remaining = Set(try await audience.people(of: campaign.clientID, on: db).filter(\.$id ~~ walked.compactMap(\.id))
            .field(\.$id).all().compactMap(\.id))
        let templates = campaign.templateIDs
        var insert = db.sql.insert(into: Simulation.schema)
            .columns("id", "client_id", "campaign_id", "user_id", "template_id", "token", "email", "first_name", "last_name",
                     "department", "position", "send_status", "stage", "send_at", "attempts", "message_id")
        var rows = 0
        for (index, person) in walked.enumerated() {
            guard let id = person.id, remaining.contains(id) else { continue }
            let position = first + index
            let template = campaign.templateAssignment == "ab" ? templates[position % templates.count] : templates.randomElement()!
            insert = insert.values(
                SQLBind(UUID.random()), SQLBind(campaign.clientID), SQLBind(plan.campaignId), SQLBind(id), SQLBind(template),
                SQLBind(TrackingTarget.mint(campaignID: plan.campaignId)), SQLBind(person.email), SQLBind(person.firstName), SQLBind(person.lastName),
                SQLBind(person.department), SQLBind(person.position), SQLBind("queued"), SQLBind(0),
                SQLBind(plan.sendAt(position: position)), SQLBind(0), SQLBind("<\(UUID.random().lowercasedString)@\(plan.domain)>"))
            rows += 1
        }
        if rows > 0 { try await insert.ignoringConflicts(with: ["campaign_id", "user_id"]).run() }
    }

    /// Queued in the launch's transaction when the audience is larger than what the request writes. Its attempts
    /// are not capped (the queue's backoff grows to hours): a campaign must not stay half-written because the
    /// database was away for a while, and each failure is shown on the campaign (`last_error`).
    static func queueJob(_ plan: PhishingLaunchPlan, on db: any Database, now: Date) async throws {
        try await db.sql.raw("""
            UPDATE phishing_campaigns SET launch_pending = \(bind: true), launch_planned = \(bind: plan.count)
            WHERE id = \(bind: plan.campaignId)
            """).run()
        try await JobQueue(db: db, clock: FixedClock(now), lease: 0)
            .enqueue(PhishingLaunchJob.kind, payload: plan, uniqueKey: "\(PhishingLaunchJob.kind):\(plan.campaignId.lowercasedString)",
                     maxAttempts: 1_000_000)
    }
}

/// Writes the simulations of a launched campaign's audience beyond the first `PhishingLaunch.peopleInline`, in
/// batches, from the cursor the launch (or the previous run) saved; the campaign stays `sending` (never marked
/// `sent`) until it finishes, and its progress counts the whole audience meanwhile. Handed back at shutdown between
/// batches.
struct PhishingLaunchJob: JobHandler {
    static let kind = "phishing.launch"

    func run(payload: String, context: JobContext) async throws {
        let plan = try JSONDecoder().decode(PhishingLaunchPlan.self, from: Data(payload.utf8))
        let db = context.app.db
        do {
            if let campaign = try await PhishingCampaign.find(plan.campaignId, on: db) {
                let cursor = try await PhishingLaunch.savedCursor(of: plan.campaignId, on: db)
                _ = try await PhishingLaunch.write(plan, campaign: campaign, from: cursor, db: db, transactions: true,
                                                   shouldStop: context.shouldStop)
            }
        } catch is JobInterrupted {
            throw JobInterrupted()
        } catch {
            try? await db.sql.raw("""
                UPDATE phishing_campaigns SET last_error = \(bind: "Writing the audience's messages failed; retrying: \(error)")
                WHERE id = \(bind: plan.campaignId)
                """).run()
            throw error
        }
        try await db.sql.raw("UPDATE phishing_campaigns SET launch_pending = \(bind: false) WHERE id = \(bind: plan.campaignId)").run()
    }
}

/// The launch walk's state on the campaign: whether it is under way, how many people it planned, and its cursor.
struct UpdatePhishingCampaignsForLaunchWalk: AsyncMigration {
    func prepare(on database: any Database) async throws {
        // One column a statement: SQLite's ALTER TABLE adds one at a time.
        let schema = { database.schema(PhishingCampaign.schema) }
        try await schema().field("launch_pending", .bool, .required, .sql(.default(false))).update()
        try await schema().field("launch_planned", .int).update()
        try await schema().field("launch_after", .uuid).update()
        try await schema().field("launch_position", .int, .required, .sql(.default(0))).update()
    }

    func revert(on database: any Database) async throws {
        for field in ["launch_pending", "launch_planned", "launch_after", "launch_position"] {
            try await database.schema(PhishingCampaign.schema).deleteField(FieldKey(stringLiteral: field)).update()
        }
    }
}
