import Fluent
import SQLKit
import Vapor

/// The result of one message, written through `Application.sendOutcomes`.
struct SendOutcome: Sendable {
    let simulationID: UUID
    let campaignID: UUID
    let clientID: UUID
    let worker: String
    let attempts: Int
    let outcome: MailOutcome
    let at: Date
    /// The event's id, given once: a write retried after its commit's answer was lost stores the event once.
    let eventID: UUID

    init(simulation: Simulation, worker: String, outcome: MailOutcome, at: Date) {
        eventID = UUID.timeOrdered()
        simulationID = simulation.id!
        campaignID = simulation.$campaign.id
        clientID = simulation.clientID
        self.worker = worker
        attempts = simulation.attempts
        self.outcome = outcome
        self.at = at
    }

    /// Writes a batch of outcomes in the writer's transaction: the simulations, and one event each.
    /// Rows are updated in id order (as a cancel locks them), so concurrent writers and cancels never deadlock.
    static func write(_ outcomes: [SendOutcome], on db: any Database) async throws {
        try await db.useGenericPlans()
        let outcomes = outcomes.sorted(by: { UUID.byteOrder($0.simulationID, $1.simulationID) })
        try await Simulation.lockInIDOrder(outcomes.map(\.simulationID), on: db)
        // Messages that went out, whatever happened to their rows meanwhile (a cancel after the message left), in one
        // statement: one per message kept the group commit's transaction, which each connection waits for, longer.
        let sent = outcomes.filter { $0.outcome == .sent }
        if !sent.isEmpty {
            var values = BoundRows(count: sent.count, on: db)
            values.add(sent.map(\.simulationID))
            values.add(sent.map(\.at))
            try await db.plainRun("""
                WITH v(id, sent_at) AS (\(values.table))
                UPDATE phishing_simulations SET send_status = 'sent', sent_at = v.sent_at, error = NULL,
                    stage = CASE WHEN phishing_simulations.stage < 1 THEN 1 ELSE phishing_simulations.stage END, claimed_by = NULL
                FROM v WHERE phishing_simulations.id = v.id
                """, prepared: true)
        }
        var events: [TrackingEvent] = []
        for result in outcomes {
            let kind: String
            let error: String?
            switch result.outcome {
            case .sent:
                kind = "sent"
                error = nil
            case let .temporaryFailure(reason):
                let attempts = result.attempts + 1
                let givesUp = attempts >= PhishingSender.maxAttempts
                kind = givesUp ? "error" : "deferred"
                error = givesUp ? "gave up after \(attempts) attempts: \(reason)" : reason
                try await db.sql.raw("""
                    UPDATE phishing_simulations SET attempts = \(bind: attempts), error = \(bind: error),
                        send_status = \(bind: givesUp ? "error" : "queued"), claimed_by = NULL,
                        send_at = \(bind: result.at.addingTimeInterval(pow(2, Double(attempts)) * 30))
                    WHERE id = \(bind: result.simulationID) AND send_status = 'sending' AND claimed_by = \(bind: result.worker)
                    """).run()
            case let .permanentFailure(reason):
                kind = "error"
                error = reason
                try await db.sql.raw("""
                    UPDATE phishing_simulations SET attempts = \(bind: result.attempts + 1), error = \(bind: reason),
                        send_status = 'error', claimed_by = NULL
                    WHERE id = \(bind: result.simulationID) AND send_status = 'sending' AND claimed_by = \(bind: result.worker)
                    """).run()
            }
            events.append(TrackingEvent(
                id: result.eventID, simulationID: result.simulationID, campaignID: result.campaignID, clientID: result.clientID,
                kind: kind, occurredAt: result.at, ip: nil, userAgent: nil, botReason: nil, details: error))
        }
        try await PhishingEvent.insert(events, on: db)
    }
}

struct PhishingSendJob: JobHandler {
    static let kind = "phishing.send"

    func run(payload: String, context: JobContext) async throws {
        try await PhishingSender(context: context).sendDue()
    }

    /// SQLite, at start: simulations a dead process was sending go back to the queue. Those whose message was in
    /// flight when it died go out again (at most one per connection).
    /// Each counts an attempt: a message whose sending kills the process gives up after `maxAttempts` instead of
    /// looping.
    func handBackAbandoned(db: any Database) async throws {
        try await db.sql.raw("""
            UPDATE phishing_simulations SET attempts = attempts + 1, claimed_by = NULL, claimed_at = NULL,
                send_status = CASE WHEN attempts + 1 >= \(bind: PhishingSender.maxAttempts) THEN 'error' ELSE 'queued' END,
                error = CASE WHEN attempts + 1 >= \(bind: PhishingSender.maxAttempts)
                             THEN 'gave up: the process stopped while sending it' ELSE error END
            WHERE send_status = 'sending'
            """).run()
    }
}

extension Application {
    private struct SendOutcomesKey: StorageKey { typealias Value = GroupCommit<SendOutcome> }

    /// Created in `configure`; closed at shutdown after the job worker stopped.
    var sendOutcomes: GroupCommit<SendOutcome> {
        get { storage[SendOutcomesKey.self]! }
        set { storage[SendOutcomesKey.self] = newValue }
    }
}
