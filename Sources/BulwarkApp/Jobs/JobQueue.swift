import Fluent
import SQLKit
import Vapor

/// Database-backed job queue with leases. A claim stamps the worker's name and the time (read at that moment) and
/// counts an attempt; a worker keeps its lease by heartbeats and completes or fails a job only while it still holds it,
/// so a job never runs twice at once and a job that keeps killing its process ends up dead instead of looping. On
/// PostgreSQL several processes claim with `FOR UPDATE SKIP LOCKED` and an abandoned lease is taken over once it is
/// older than `lease`; on SQLite one process owns the queue (`QueueOwnership`) and hands back a dead one's work at start.
struct JobQueue: Sendable {
    let db: any Database
    let clock: any Clock
    let lease: TimeInterval

    init(db: any Database, clock: any Clock, lease: TimeInterval) {
        self.db = db
        self.clock = clock
        self.lease = lease
    }

    /// Queues a job. With a `uniqueKey` that is already queued or running, nothing is added and false is returned.
    @discardableResult
    func enqueue<P: Encodable>(_ kind: String, payload: P, runAt: Date? = nil, uniqueKey: String? = nil,
                               maxAttempts: Int = 8) async throws -> Bool {
        let now = clock.now()
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

    /// Claims up to `limit` due jobs for `worker`, and running jobs whose lease ran out (their worker vanished).
    /// Every claim counts an attempt; a job claimed more often than it may run is given up here.
    /// `excludingKinds` leaves out kinds the caller is already running.
    func claim(limit: Int, worker: String, excludingKinds: [String] = []) async throws -> [Job] {
        let now = clock.now()
        let expired = now.addingTimeInterval(-lease)
        let kinds: SQLQueryString = excludingKinds.isEmpty ? "" : "AND kind NOT IN (\(binds: excludingKinds))"
        let due: SQLQueryString = """
            SELECT id FROM jobs
            WHERE ((status = 'queued' AND run_at <= \(bind: now)) OR (status = 'running' AND locked_at < \(bind: expired)))
              \(kinds)
            ORDER BY run_at LIMIT \(bind: limit)
            """
        let set: SQLQueryString = """
            SET status = 'running', locked_at = \(bind: now), locked_by = \(bind: worker), attempts = attempts + 1
            """
        let ids: [UUID]
        if db.sql.dialect.name == "postgresql" {
            // A CTE runs once: `id IN (SELECT … LIMIT n FOR UPDATE SKIP LOCKED)` may be evaluated again per row under
            // concurrency and claim more than `limit` rows, which nobody would then run.
            ids = try await db.sql.raw("""
                WITH next AS (\(due) FOR UPDATE SKIP LOCKED)
                UPDATE jobs \(set) FROM next WHERE jobs.id = next.id RETURNING jobs.id
                """).all().map { try $0.decode(column: "id", as: UUID.self) }
        } else {
            ids = try await db.sql.raw("UPDATE jobs \(set) WHERE id IN (\(due)) RETURNING id").all()
                .map { try $0.decode(column: "id", as: UUID.self) }
        }
        guard !ids.isEmpty else { return [] }
        var runnable: [Job] = []
        for job in try await Job.query(on: db).filter(\.$id ~~ ids).sort(\.$runAt).all() {
            if job.attempts > job.maxAttempts {
                try await fail(job, worker: worker, error: "gave up: its process stopped while running it \(job.attempts - 1) times")
            } else {
                runnable.append(job)
            }
        }
        return runnable
    }

    /// Whether a job is due now (not counting running ones whose lease is still good).
    func hasDue(excludingKinds: [String]) async throws -> Bool {
        let kinds: SQLQueryString = excludingKinds.isEmpty ? "" : "AND kind NOT IN (\(binds: excludingKinds))"
        return try await db.sql.raw("""
            SELECT 1 AS due FROM jobs WHERE status = 'queued' AND run_at <= \(bind: clock.now()) \(kinds) LIMIT 1
            """).first() != nil
    }

    /// Marks a job done, if `worker` still holds it. Returns false when the lease was lost to another worker.
    /// With `rescheduleAt` (a recurring job) the same row is queued again for then, its attempts reset.
    @discardableResult
    func complete(_ job: Job, worker: String, rescheduleAt: Date? = nil) async throws -> Bool {
        if let rescheduleAt {
            return try await db.sql.raw("""
                UPDATE jobs SET status = 'queued', run_at = \(bind: rescheduleAt), attempts = 0, last_error = NULL,
                    locked_by = NULL, locked_at = NULL, finished_at = \(bind: clock.now())
                WHERE id = \(bind: job.id!) AND locked_by = \(bind: worker) AND status = 'running' RETURNING id
                """).first() != nil
        }
        // Done jobs give up their unique key so the same key can be queued again.
        return try await db.sql.raw("""
            UPDATE jobs SET status = 'done', finished_at = \(bind: clock.now()), unique_key = NULL, locked_by = NULL
            WHERE id = \(bind: job.id!) AND locked_by = \(bind: worker) AND status = 'running' RETURNING id
            """).first() != nil
    }

    /// Deletes done and dead jobs finished more than `keeping` seconds ago (BULWARK_JOB_RETENTION_DAYS).
    @discardableResult
    func prune(keeping: TimeInterval) async throws -> Int {
        try await db.sql.raw("""
            DELETE FROM jobs WHERE status IN ('done', 'dead') AND finished_at < \(bind: clock.now().addingTimeInterval(-keeping))
            RETURNING id
            """).all().count
    }

    /// Records a failure of the attempt counted at claim: retried after 2^(attempts-1) × 15 s (capped at 6 h), or dead
    /// with its last error. Only while `worker` still holds the job.
    @discardableResult
    func fail(_ job: Job, worker: String, error: String) async throws -> Bool {
        let now = clock.now()
        let dead = job.attempts >= job.maxAttempts
        let delay = min(pow(2, Double(max(job.attempts, 1) - 1)) * 15, 21_600)
        return try await db.sql.raw("""
            UPDATE jobs SET last_error = \(bind: String(error.prefix(2000))),
                status = \(bind: dead ? Job.Status.dead.rawValue : Job.Status.queued.rawValue),
                run_at = \(bind: dead ? job.runAt : now.addingTimeInterval(delay)),
                unique_key = \(bind: dead ? nil : job.uniqueKey), locked_by = NULL, locked_at = NULL,
                finished_at = \(bind: dead ? now : nil)
            WHERE id = \(bind: job.id!) AND locked_by = \(bind: worker) AND status = 'running' RETURNING id
            """).first() != nil
    }

    /// Keeps the leases of `jobs`; returns the ids `worker` still holds.
    func heartbeat(_ jobs: [UUID], worker: String) async throws -> Set<UUID> {
        guard !jobs.isEmpty else { return [] }
        return Set(try await db.sql.raw("""
            UPDATE jobs SET locked_at = \(bind: clock.now())
            WHERE id IN (\(binds: jobs)) AND locked_by = \(bind: worker) AND status = 'running' RETURNING id
            """).all().map { try $0.decode(column: "id", as: UUID.self) })
    }

    /// Gives a job back untouched (a graceful stop): runnable at once, and the attempt its claim counted is returned.
    func handBack(_ job: Job, worker: String) async throws {
        try await db.sql.raw("""
            UPDATE jobs SET status = 'queued', locked_by = NULL, locked_at = NULL, attempts = attempts - 1
            WHERE id = \(bind: job.id!) AND locked_by = \(bind: worker) AND status = 'running'
            """).run()
    }

    /// Everything marked running belongs to a process that is gone (the caller owns the queue): runnable at once.
    /// The attempts stay counted, so a job that kills its process does not loop forever.
    @discardableResult
    func handBackAbandoned() async throws -> Int {
        try await db.sql.raw("""
            UPDATE jobs SET status = 'queued', locked_by = NULL, locked_at = NULL, run_at = \(bind: clock.now())
            WHERE status = 'running' RETURNING id
            """).all().count
    }

    func depth() async throws -> Int {
        try await Job.query(on: db).filter(\.$status ~~ [Job.Status.queued.rawValue, Job.Status.running.rawValue]).count()
    }
}
