import Fluent
import SQLKit
import Vapor

/// A tracking event as stored. Its id is given when the request is answered, so a replayed journal stores it once.
struct TrackingEvent: Sendable, Equatable {
    let id: UUID
    let simulationID: UUID
    let campaignID: UUID
    let clientID: UUID
    let kind: String
    let occurredAt: Date
    let ip: String?
    let userAgent: String?
    let botReason: String?
    let details: String?

    init(id: UUID? = nil, simulationID: UUID, campaignID: UUID, clientID: UUID, kind: String, occurredAt: Date, ip: String?,
         userAgent: String?, botReason: String?, details: String?) {
        self.id = id ?? UUID.timeOrdered(at: occurredAt)
        self.simulationID = simulationID
        self.campaignID = campaignID
        self.clientID = clientID
        self.kind = kind
        self.occurredAt = occurredAt
        self.ip = ip
        self.userAgent = userAgent
        self.botReason = botReason
        self.details = details
    }

    /// The stage a person's event moves the simulation to (never backwards); reports move nothing.
    var stage: Simulation.Stage? {
        switch kind {
        case "open": .opened
        case "click": .clicked
        case "submit": .submitted
        default: nil
        }
    }
}

/// What a tracking request keeps: the token as it came and what the request said. The journal's flusher resolves a
/// batch of them to their simulations in one query, so an open costs its request no database work at all.
struct TrackingHit: Sendable, Equatable {
    let id: UUID
    let token: String
    let kind: String
    let occurredAt: Date
    let ip: String?
    let userAgent: String?
    let isHead: Bool
    let details: String?

    init(id: UUID? = nil, token: String, kind: String, occurredAt: Date, ip: String?, userAgent: String?, isHead: Bool,
         details: String?) {
        self.id = id ?? UUID.timeOrdered(at: occurredAt)
        self.token = token
        self.kind = kind
        self.occurredAt = occurredAt
        self.ip = ip
        self.userAgent = userAgent
        self.isHead = isHead
        self.details = details
    }
}

extension TrackingHit: JournalRecord {
    func journalRecord() -> [UInt8] {
        var record = JournalBytes()
        record.write(id)
        record.write(occurredAt)
        for text in [token, kind, isHead ? "HEAD" : "GET", ip, userAgent, details] { record.write(text) }
        return record.bytes
    }

    init(journalRecord bytes: [UInt8]) throws {
        var record = JournalBytes(reading: bytes)
        let id = try record.readUUID()
        let occurredAt = try record.readDate()
        guard let token = try record.readString(), let kind = try record.readString(), let method = try record.readString() else {
            throw JournalBytes.Malformed()
        }
        self.init(id: id, token: token, kind: kind, occurredAt: occurredAt, ip: try record.readString(),
                  userAgent: try record.readString(), isHead: method == "HEAD", details: try record.readString())
    }
}

/// Tracking goes through a write-behind journal: a request answers once its hit is in the journal file, and the
/// journal's flusher turns the hits of the last few milliseconds into events in one transaction.
enum TrackingEventWriter {
    typealias Journal = WriteBehindJournal<TrackingHit>
    /// Campaigns whose tracking links still record: a completed campaign's links work but count nothing.
    static let recordingStatuses: Set<String> = ["sending", "sent", "cancelled"]

    static func make(app: Application, directory: String?) async throws -> Journal {
        let detector = app.botDetector
        let metrics = app.phishingMetrics
        return try Journal(db: try await database(app), logger: app.logger, directory: directory, prefix: "tracking",
                           maxBatch: batchSize) { hits, db in
            try await db.useGenericPlans()
            try await takeWriteLock(on: db)
            let resolved = try await resolve(hits, detector: detector, on: db)
            let events = resolved.map(\.event)
            try await write(events, on: db)
            try await PhishingFollowUp.enrol(resolved.filter(\.enrolsInTraining).map { ($0.target, $0.event.occurredAt) }, on: db)
            // Counted per kind, once a batch: finding a labelled counter in the registry cost more than the increment.
            var byKind: [String: Int] = [:]
            for event in events { byKind[event.botReason == nil ? event.kind : "\(event.kind)_flagged", default: 0] += 1 }
            for (kind, count) in byKind { metrics.events(kind).increment(by: Int64(count)) }
        }
    }

    /// Hits written in one transaction at most. Larger batches share more of the pages they change (an index leaf, a
    /// simulation's page) and cost less per hit: under phishing.sh's open load on SQLite (100,000 people) the flusher
    /// stored 12,900 opens/s in batches of 2,000 and 15,300 in batches of 8,000, no more in batches of 16,000, which
    /// hold SQLite's write lock twice as long.
    static let batchSize = 8_000

    /// On a SQLite file, the flusher has a connection of its own. No request then waits for its event loop's
    /// connection behind the flusher's transactions (a batch of hits, a few hundred milliseconds under load); one that
    /// writes still waits for SQLite's write lock. Its page cache keeps what hits touch (the token index, simulations, the events' indexes)
    /// without the lists' and imports' connections growing theirs (64 MB, filled only by tracking: 100,000
    /// simulations' hot pages). It checkpoints at 8,000 pages of log like the others: at 32,000 it stored 3% more hits,
    /// but each checkpoint wrote and synced up to 128 MB inside a batch, long enough to hold hits back. Elsewhere it
    /// is the application's database.
    static func database(_ app: Application) async throws -> any Database {
        guard case .sqliteFile = app.settings.database,
              let db = app.databases.database(.trackingWriter, logger: app.logger, on: app.eventLoopGroup.next()) else { return app.db }
        try await tuneSQLiteConnection(db, cacheKB: 64_000)
        return db
    }

    /// On SQLite, takes the write lock before the batch reads anything (waiting for it as the busy timeout allows).
    /// Fluent's `BEGIN` is deferred: the batch would read its tokens on a snapshot, and if another connection wrote
    /// meanwhile (a request, the sender), its first write would fail at once (BUSY_SNAPSHOT) and the batch be split and
    /// tried again. A write statement that changes nothing takes the lock like any other.
    static func takeWriteLock(on db: any Database) async throws {
        guard db.sql.dialect.name == "sqlite" else { return }
        try await db.sql.raw("UPDATE phishing_events SET id = id WHERE 0").run()
    }

    /// A hit as the event it stores, with the simulation it names.
    struct Resolved: Sendable {
        let event: TrackingEvent
        let target: TrackingTarget

        /// A person's (not a scanner's) click or submission, in a campaign that teaches those who fall for it.
        var enrolsInTraining: Bool {
            (event.kind == "click" || event.kind == "submit") && event.botReason == nil && target.trainingModuleID != nil
        }
    }

    /// The hits whose token names a simulation of a recording campaign, as events; scanners are flagged, as of the
    /// moment of the hit.
    static func resolve(_ hits: [TrackingHit], detector: BotDetector, on db: any Database) async throws -> [Resolved] {
        var targets: [String: TrackingTarget] = [:]
        let tokens = Array(Set(hits.map(\.token)))
        for start in stride(from: 0, to: tokens.count, by: 2_000) {
            let found = try await TrackingTarget.find(tokens: Array(tokens[start..<min(start + 2_000, tokens.count)]), on: db)
            targets.merge(found.filter { recordingStatuses.contains($0.value.campaignStatus) }) { $1 }
        }
        return hits.compactMap { hit in
            guard let target = targets[hit.token] else { return nil }
            let reason = hit.kind == "report" ? nil : detector.reason(
                isHead: hit.isHead, userAgent: hit.userAgent, ip: hit.ip, sentAt: target.sentAt, now: hit.occurredAt)
            return Resolved(event: TrackingEvent(
                id: hit.id, simulationID: target.simulationID, campaignID: target.campaignID, clientID: target.clientID, kind: hit.kind,
                occurredAt: hit.occurredAt, ip: hit.ip, userAgent: hit.userAgent, botReason: reason, details: hit.details), target: target)
        }
    }

    static func write(_ events: [TrackingEvent], on db: any Database) async throws {
        guard !events.isEmpty else { return }
        // Everything touching simulations (the foreign-key check of each insert locks its row too) goes in id order,
        // the order every writer of them uses, so concurrent batches and cancels cannot deadlock.
        let events = events.sorted { UUID.byteOrder($0.simulationID, $1.simulationID) }
        try await Simulation.lockInIDOrder(events.map(\.simulationID), on: db)
        try await PhishingEvent.insert(events, on: db)
        try await recordProgress(of: events, on: db)
    }

    /// What one batch moves a simulation to: its furthest stage and the first time each stage was reached.
    struct Progress: Equatable {
        var stage = 0
        var openedAt: Date?
        var clickedAt: Date?
        var submittedAt: Date?
        var reportedAt: Date?

        mutating func add(_ event: TrackingEvent) {
            let at = event.occurredAt
            if event.kind == "report" { reportedAt = min(reportedAt ?? at, at); return }
            guard let reached = event.stage?.rawValue else { return }
            stage = max(stage, reached)
            openedAt = min(openedAt ?? at, at)
            if reached >= Simulation.Stage.clicked.rawValue { clickedAt = min(clickedAt ?? at, at) }
            if reached >= Simulation.Stage.submitted.rawValue { submittedAt = min(submittedAt ?? at, at) }
        }
    }

    /// People's events (not scanners') per simulation, in id order.
    static func progress(of events: [TrackingEvent]) -> [(UUID, Progress)] {
        var bySimulation: [UUID: Progress] = [:]
        for event in events where event.botReason == nil { bySimulation[event.simulationID, default: Progress()].add(event) }
        return bySimulation.filter { $0.value != Progress() }.sorted { UUID.byteOrder($0.key, $1.key) }
    }

    /// One statement for the whole batch (it was one per event, each a round trip while the writer held the database).
    /// Stages only move forward and each timestamp keeps its first value; a simulation the batch changes nothing in
    /// (a repeated open) is not rewritten. Every time is given (a stage's flag decides whether its time is used), so
    /// each column is one array of one type.
    private static func recordProgress(of events: [TrackingEvent], on db: any Database) async throws {
        let rows = progress(of: events)
        guard !rows.isEmpty else { return }
        let anyTime = rows.map { $0.1.reportedAt ?? $0.1.openedAt! }
        var values = BoundRows(count: rows.count, on: db)
        values.add(rows.map(\.0))
        values.add(rows.map(\.1.stage))
        values.add(zip(rows, anyTime).map { $0.1.openedAt ?? $1 })
        values.add(zip(rows, anyTime).map { $0.1.clickedAt ?? $1 })
        values.add(zip(rows, anyTime).map { $0.1.submittedAt ?? $1 })
        values.add(rows.map { $0.1.reportedAt != nil ? 1 : 0 })
        values.add(zip(rows, anyTime).map { $0.1.reportedAt ?? $1 })
        try await db.plainRun("""
            WITH v(id, stage, opened_at, clicked_at, submitted_at, reported, reported_at) AS (\(values.table))
            UPDATE phishing_simulations SET
                stage = CASE WHEN phishing_simulations.stage < v.stage THEN v.stage ELSE phishing_simulations.stage END,
                opened_at = CASE WHEN v.stage >= 2 THEN COALESCE(phishing_simulations.opened_at, v.opened_at) ELSE phishing_simulations.opened_at END,
                clicked_at = CASE WHEN v.stage >= 3 THEN COALESCE(phishing_simulations.clicked_at, v.clicked_at) ELSE phishing_simulations.clicked_at END,
                submitted_at = CASE WHEN v.stage >= 4 THEN COALESCE(phishing_simulations.submitted_at, v.submitted_at) ELSE phishing_simulations.submitted_at END,
                reported_at = CASE WHEN v.reported = 1 THEN COALESCE(phishing_simulations.reported_at, v.reported_at) ELSE phishing_simulations.reported_at END
            FROM v WHERE phishing_simulations.id = v.id
              AND (phishing_simulations.stage < v.stage
                   OR (v.stage >= 2 AND phishing_simulations.opened_at IS NULL)
                   OR (v.stage >= 3 AND phishing_simulations.clicked_at IS NULL)
                   OR (v.stage >= 4 AND phishing_simulations.submitted_at IS NULL)
                   OR (v.reported = 1 AND phishing_simulations.reported_at IS NULL))
            """, prepared: true)
    }
}

extension PhishingEvent {
    /// Stores a batch of events in one statement (the tracking journal's and the sender's); an event whose id is
    /// stored already (a replayed journal, a write retried after its commit's answer was lost) is stored once.
    static func insert(_ events: [TrackingEvent], on db: any Database) async throws {
        guard !events.isEmpty else { return }
        var rows = BoundRows(count: events.count, on: db)
        rows.add(events.map(\.id))
        rows.add(events.map(\.simulationID))
        rows.add(events.map(\.campaignID))
        rows.add(events.map(\.clientID))
        rows.add(events.map(\.kind))
        rows.add(events.map(\.occurredAt))
        rows.add(events.map(\.ip))
        rows.add(events.map(\.userAgent))
        rows.add(events.map { $0.botReason != nil })
        rows.add(events.map(\.botReason))
        rows.add(events.map(\.details))
        // `WHERE true`: SQLite would read `ON CONFLICT` as a join's `ON` after a bare `FROM v`.
        try await db.plainRun("""
            WITH v(id, simulation_id, campaign_id, client_id, kind, occurred_at, ip, user_agent, is_bot, bot_reason, details)
                AS (\(rows.table))
            INSERT INTO phishing_events (id, simulation_id, campaign_id, client_id, kind, occurred_at, ip, user_agent, is_bot,
                                         bot_reason, details)
            SELECT * FROM v WHERE true ON CONFLICT (id) DO NOTHING
            """, prepared: true)
    }
}

extension DatabaseID {
    /// The tracking flusher's own connection to a SQLite file (`TrackingEventWriter.database`).
    static let trackingWriter = DatabaseID(string: "tracking-writer")
}

extension Application {
    private struct WriterKey: StorageKey { typealias Value = TrackingEventWriter.Journal }
    private struct BotDetectorKey: StorageKey { typealias Value = BotDetector }

    var trackingWriter: TrackingEventWriter.Journal {
        get { storage[WriterKey.self]! }
        set { storage[WriterKey.self] = newValue }
    }

    var botDetector: BotDetector {
        get { storage[BotDetectorKey.self] ?? BotDetector() }
        set { storage[BotDetectorKey.self] = newValue }
    }
}
