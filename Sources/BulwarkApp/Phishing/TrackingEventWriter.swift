import Fluent
import SQLKit
import Vapor

/// A tracking event waiting to be written.
struct TrackingEvent: Sendable {
    let simulationID: UUID
    let campaignID: UUID
    let clientID: UUID
    let kind: String
    let occurredAt: Date
    let ip: String?
    let userAgent: String?
    let botReason: String?
    let details: String?

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

/// Writes tracking events through one group-commit writer: a campaign's burst of opens costs a handful of
/// transactions, and each request answers once its event is stored.
enum TrackingEventWriter {
    static func make(db: any Database) -> GroupCommit<TrackingEvent> {
        GroupCommit(db: db) { events, db in try await write(events, on: db) }
    }

    static func write(_ events: [TrackingEvent], on db: any Database) async throws {
        // Everything touching simulations (the foreign-key check of each insert locks its row too) goes in id order,
        // the order every writer of them uses, so concurrent batches and cancels cannot deadlock.
        let events = events.sorted { UUID.byteOrder($0.simulationID, $1.simulationID) }
        if db.sql.dialect.name == "postgresql" {
            // One UPDATE joins the batch in whatever order the planner picks, so the rows are locked first, in order.
            var seen = Set<UUID>()
            let ids = events.map(\.simulationID).filter { seen.insert($0).inserted }
            try await db.sql.raw("""
                SELECT id FROM phishing_simulations WHERE id IN (\(SQLList(ids.map { SQLBind($0) })))
                ORDER BY id FOR NO KEY UPDATE
                """).run()
        }
        var insert = db.sql.insert(into: PhishingEvent.schema)
            .columns("id", "simulation_id", "campaign_id", "client_id", "kind", "occurred_at", "ip", "user_agent", "is_bot",
                     "bot_reason", "details")
        for event in events {
            insert = insert.values(SQLBind(UUID.timeOrdered(at: event.occurredAt)), SQLBind(event.simulationID), SQLBind(event.campaignID), SQLBind(event.clientID),
                                   SQLBind(event.kind), SQLBind(event.occurredAt), SQLBind(event.ip), SQLBind(event.userAgent),
                                   SQLBind(event.botReason != nil), SQLBind(event.botReason), SQLBind(event.details))
        }
        try await insert.run()
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
    /// Stages only move forward and each timestamp keeps its first value. Every value is bound non-null (a stage's
    /// flag decides whether its time is used) so PostgreSQL can type the VALUES list from its binds.
    private static func recordProgress(of events: [TrackingEvent], on db: any Database) async throws {
        let rows = progress(of: events)
        guard !rows.isEmpty else { return }
        let values = SQLList(rows.map { id, progress in
            let any = progress.reportedAt ?? progress.openedAt!
            return SQLGroupExpression([
                SQLBind(id), SQLBind(progress.stage), SQLBind(progress.openedAt ?? any), SQLBind(progress.clickedAt ?? any),
                SQLBind(progress.submittedAt ?? any), SQLBind(progress.reportedAt != nil ? 1 : 0), SQLBind(progress.reportedAt ?? any),
            ] as [any SQLExpression])
        })
        try await db.sql.raw("""
            WITH v(id, stage, opened_at, clicked_at, submitted_at, reported, reported_at) AS (VALUES \(values))
            UPDATE phishing_simulations SET
                stage = CASE WHEN phishing_simulations.stage < v.stage THEN v.stage ELSE phishing_simulations.stage END,
                opened_at = CASE WHEN v.stage >= 2 THEN COALESCE(phishing_simulations.opened_at, v.opened_at) ELSE phishing_simulations.opened_at END,
                clicked_at = CASE WHEN v.stage >= 3 THEN COALESCE(phishing_simulations.clicked_at, v.clicked_at) ELSE phishing_simulations.clicked_at END,
                submitted_at = CASE WHEN v.stage >= 4 THEN COALESCE(phishing_simulations.submitted_at, v.submitted_at) ELSE phishing_simulations.submitted_at END,
                reported_at = CASE WHEN v.reported = 1 THEN COALESCE(phishing_simulations.reported_at, v.reported_at) ELSE phishing_simulations.reported_at END
            FROM v WHERE phishing_simulations.id = v.id
            """).run()
    }
}

extension Application {
    private struct WriterKey: StorageKey { typealias Value = GroupCommit<TrackingEvent> }
    private struct BotDetectorKey: StorageKey { typealias Value = BotDetector }

    var trackingWriter: GroupCommit<TrackingEvent> {
        get { storage[WriterKey.self]! }
        set { storage[WriterKey.self] = newValue }
    }

    var botDetector: BotDetector {
        get { storage[BotDetectorKey.self] ?? BotDetector() }
        set { storage[BotDetectorKey.self] = newValue }
    }
}
