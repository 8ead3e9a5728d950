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
        let events = events.sorted { $0.simulationID.lowercasedString < $1.simulationID.lowercasedString }
        var insert = db.sql.insert(into: PhishingEvent.schema)
            .columns("id", "simulation_id", "campaign_id", "client_id", "kind", "occurred_at", "ip", "user_agent", "is_bot",
                     "bot_reason", "details")
        for event in events {
            insert = insert.values(SQLBind(UUID()), SQLBind(event.simulationID), SQLBind(event.campaignID), SQLBind(event.clientID),
                                   SQLBind(event.kind), SQLBind(event.occurredAt), SQLBind(event.ip), SQLBind(event.userAgent),
                                   SQLBind(event.botReason != nil), SQLBind(event.botReason), SQLBind(event.details))
        }
        try await insert.run()
        for event in events where event.botReason == nil {
            if event.kind == "report" {
                try await db.sql.raw("""
                    UPDATE phishing_simulations SET reported_at = COALESCE(reported_at, \(bind: event.occurredAt))
                    WHERE id = \(bind: event.simulationID)
                    """).run()
                continue
            }
            guard let stage = event.stage else { continue }
            // Earlier stages are implied by later ones (a click means the mail was opened).
            try await db.sql.raw("""
                UPDATE phishing_simulations SET
                    stage = CASE WHEN stage < \(bind: stage.rawValue) THEN \(bind: stage.rawValue) ELSE stage END,
                    opened_at = COALESCE(opened_at, \(bind: event.occurredAt)),
                    clicked_at = CASE WHEN \(bind: stage.rawValue) >= 3 THEN COALESCE(clicked_at, \(bind: event.occurredAt)) ELSE clicked_at END,
                    submitted_at = CASE WHEN \(bind: stage.rawValue) >= 4 THEN COALESCE(submitted_at, \(bind: event.occurredAt)) ELSE submitted_at END
                WHERE id = \(bind: event.simulationID)
                """).run()
        }
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
