import Fluent
import SQLKit
import Vapor

/// Database-backed job queue. On PostgreSQL several processes claim with `FOR UPDATE SKIP LOCKED`, so a job runs in
/// one place at a time; on SQLite the claiming UPDATE is atomic under the single writer.
struct JobQueue: Sendable {
    let db: any Database
    let now: Date

    static let staleAfter: TimeInterval = 600

    /// Queues a job. With a `uniqueKey` that is already queued or running, nothing is added and false is returned.
    @discardableResult
    func enqueue<P: Encodable>(_ kind: String, payload: P, runAt: Date? = nil, uniqueKey: String? = nil,
                               maxAttempts: Int = 8) async throws -> Bool {
        let text = String(decoding: try JSONEncoder().encode(payload), as: UTF8.self)
        let row = try await db.sql.raw("""
            INSERT INTO jobs (id, kind, payload, status, run_at, attempts, max_attempts, unique_key, created_at)
            VALUES (\(bind: UUID()), \(bind: kind), \(bind: text), 'queued', \(bind: runAt ?? now), 0, \(bind: maxAttempts),
                    \(bind: uniqueKey), \(bind: now))
            ON CONFLICT (unique_key) DO NOTHING
            RETURNING id
            """).first()
        return row != nil
    }

    /// Claims up to `limit` due jobs for `worker`, including running jobs whose worker vanished (stale lock).
    func claim(limit: Int, worker: String) async throws -> [Job] {
        let stale = now.addingTimeInterval(-Self.staleAfter)
        let lock = db is any SQLDatabase && (db as! any SQLDatabase).dialect.name == "postgresql" ? "FOR UPDATE SKIP LOCKED" : ""
        let ids = try await db.sql.raw("""
            UPDATE jobs SET status = 'running', locked_at = \(bind: now), locked_by = \(bind: worker)
            WHERE id IN (
                SELECT id FROM jobs
                WHERE (status = 'queued' AND run_at <= \(bind: now)) OR (status = 'running' AND locked_at < \(bind: stale))
                ORDER BY run_at LIMIT \(bind: limit) \(unsafeRaw: lock)
            )
            RETURNING id
            """).all().map { try $0.decode(column: "id", as: UUID.self) }
        guard !ids.isEmpty else { return [] }
        return try await Job.query(on: db).filter(\.$id ~~ ids).sort(\.$runAt).all()
    }

    func complete(_ job: Job) async throws {
        // Done jobs give up their unique key so the same key can be scheduled again (next recurring slot).
        try await Job.query(on: db).filter(\.$id == job.id!)
            .set(\.$status, to: Job.Status.done.rawValue).set(\.$finishedAt, to: now)
            .set(\.$uniqueKey, to: nil).set(\.$lockedBy, to: nil).update()
    }

    /// Records a failure: retried after 2^attempts × 15 s (capped at 6 h), or dead with its last error.
    func fail(_ job: Job, error: String) async throws {
        let attempts = job.attempts + 1
        let dead = attempts >= job.maxAttempts
        let delay = min(pow(2, Double(attempts - 1)) * 15, 21_600)
        try await Job.query(on: db).filter(\.$id == job.id!)
            .set(\.$attempts, to: attempts)
            .set(\.$lastError, to: String(error.prefix(2000)))
            .set(\.$status, to: dead ? Job.Status.dead.rawValue : Job.Status.queued.rawValue)
            .set(\.$runAt, to: dead ? job.runAt : now.addingTimeInterval(delay))
            .set(\.$uniqueKey, to: dead ? nil : job.uniqueKey)
            .set(\.$lockedBy, to: nil)
            .set(\.$finishedAt, to: dead ? now : nil)
            .update()
    }

    func depth() async throws -> Int {
        try await Job.query(on: db).filter(\.$status ~~ [Job.Status.queued.rawValue, Job.Status.running.rawValue]).count()
    }
}
