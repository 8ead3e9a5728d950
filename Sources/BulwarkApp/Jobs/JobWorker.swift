import Fluent
import NIOConcurrencyHelpers
import Vapor

/// What a running job may ask of its worker.
struct JobContext: Sendable {
    let app: Application
    /// The lease owner: the worker's name, also stamped on work the job claims (e.g. simulations being sent).
    let worker: String
    let lease: TimeInterval
    /// True once the process is shutting down: finish the unit of work in hand, then hand back the rest and throw
    /// `JobInterrupted`.
    let shouldStop: @Sendable () -> Bool

    /// The clock is read at each use: a long run must not stamp late work with its start time.
    var now: Date { app.clock.now() }

    /// How often a lease, or a claim a job holds, is renewed: three times per lease.
    var heartbeatInterval: TimeInterval { max(lease / 3, 0.05) }
}

/// Thrown by a handler that stopped early because the process is shutting down; its job is handed back, uncounted.
struct JobInterrupted: Error {}

/// What a job kind does. Handlers must be idempotent: a job may run again after a crash.
protocol JobHandler: Sendable {
    static var kind: String { get }
    func run(payload: String, context: JobContext) async throws
    /// Releases work this kind claims outside the jobs table that a process now gone left behind (SQLite, at start).
    func handBackAbandoned(db: any Database) async throws
}

extension JobHandler {
    func handBackAbandoned(db: any Database) async throws {}
}

/// A job that schedules itself every `interval` seconds (escalation scans, auto-enrolment).
struct RecurringJob: Sendable {
    let kind: String
    let interval: TimeInterval
}

/// Runs due jobs in the server process. Tests drive it with `runDue()` and an injected clock instead of the loop.
final class JobWorker: Sendable {
    let name = "worker-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))"
    private let handlers = NIOLockedValueBox<[String: any JobHandler]>([:])
    private let recurring = NIOLockedValueBox<[RecurringJob]>([])
    private let task = NIOLockedValueBox<Task<Void, Never>?>(nil)
    private let stopping = NIOLockedValueBox(false)
    private let lastPrune = NIOLockedValueBox(Date.distantPast)

    var isStopping: Bool { stopping.withLockedValue { $0 } }

    func register(_ handler: any JobHandler) {
        handlers.withLockedValue { $0[type(of: handler).kind] = handler }
    }

    func schedule(_ job: RecurringJob) {
        recurring.withLockedValue { $0.append(job) }
    }

    /// Ensures each recurring job has its next slot queued, then runs due jobs until none is left: up to `concurrency`
    /// at once, never two of one kind in this worker (a slow reminder scan during an SMTP outage does not hold up
    /// sending). Jobs are claimed one at a time, when a slot is free, so no claimed job waits unheartbeated.
    /// Returns how many ran.
    @discardableResult
    func runDue(app: Application, concurrency: Int = 4, poll: Duration = .seconds(1)) async throws -> Int {
        let queue = app.jobs
        for job in recurring.withLockedValue({ $0 }) {
            try await queue.enqueue(job.kind, payload: ["slot": 0], uniqueKey: "recurring:\(job.kind)")
        }
        var ran = 0
        try await withThrowingTaskGroup(of: String?.self) { group in
            var runningKinds: [String] = []
            var ticking = false
            var recheck = 3
            func finished(_ kind: String?) {
                if let kind, let index = runningKinds.firstIndex(of: kind) { runningKinds.remove(at: index) }
                if kind == nil { ticking = false }
            }
            while !isStopping {
                var claimed: Job?
                if runningKinds.count < concurrency {
                    do {
                        let jobs = try await queue.claim(limit: 1, worker: name, excludingKinds: runningKinds)
                        claimed = jobs.first
                        // Never more than asked for; if so, the extra goes straight back rather than wait out its lease.
                        for extra in jobs.dropFirst() { try await queue.handBack(extra, worker: name) }
                    } catch {
                        // A claim that fails (the database busy or away) must not cancel the jobs already running.
                        app.logger.warning("Job worker: claiming failed: \(String(describing: error))")
                        if runningKinds.isEmpty { throw error }
                    }
                }
                if let job = claimed {
                    ran += 1
                    runningKinds.append(job.kind)
                    group.addTask { await self.run(job, app: app); return job.kind }
                    continue
                }
                if runningKinds.isEmpty {
                    // Nothing claimed and nothing running: done, unless jobs are due that another worker's claim had
                    // locked a moment ago (SKIP LOCKED passes over them); look once more before stopping.
                    if recheck > 0, (try? await queue.hasDue(excludingKinds: [])) == true {
                        recheck -= 1
                        try? await Task.sleep(for: .milliseconds(20))
                        continue
                    }
                    break
                }
                // Something runs: wait for it to end, or for the next poll (a job of another kind may have come due).
                if !ticking {
                    ticking = true
                    group.addTask { try? await Task.sleep(for: poll); return nil }
                }
                finished(try await group.next() ?? nil)
            }
            // Only a poll tick can be left when nothing runs: cut it short. (Running jobs are never cancelled here:
            // on a stop they finish the unit in hand and hand back the rest.)
            if runningKinds.isEmpty { group.cancelAll() }
            while let kind = try await group.next() { finished(kind) }
        }
        return ran
    }

    /// Runs one job while a heartbeat keeps its lease; a lost lease (another worker took over) cancels the run. A
    /// heartbeat that fails (the database busy or briefly away) is retried: only a lease seen lost ends the run.
    private func run(_ job: Job, app: Application) async {
        let queue = app.jobs
        guard let handler = handlers.withLockedValue({ $0[job.kind] }) else {
            _ = try? await queue.fail(job, worker: name, error: "no handler for job kind \(job.kind)")
            return
        }
        let lease = app.settings.jobLease
        let context = JobContext(app: app, worker: name, lease: lease, shouldStop: { [weak self] in self?.isStopping ?? true })
        let jobID = job.id!
        let name = self.name
        let logger = app.logger
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await handler.run(payload: job.payload, context: context) }
                group.addTask {
                    while true {
                        try await Task.sleep(for: .seconds(context.heartbeatInterval))
                        do {
                            if try await queue.heartbeat([jobID], worker: name).isEmpty { throw LeaseLost() }
                        } catch let error where !(error is LeaseLost) && !(error is CancellationError) {
                            logger.warning("Job \(job.kind) \(jobID): heartbeat failed (\(String(describing: error))); retrying.")
                        }
                    }
                }
                try await group.next()
                group.cancelAll()
            }
            let interval = recurring.withLockedValue({ $0.first { $0.kind == job.kind } })?.interval
            // A recurring job's row is reused for its next run: no row per run piles up (sending alone runs every 2 s).
            guard try await queue.complete(job, worker: name,
                                           rescheduleAt: interval.map { app.clock.now().addingTimeInterval($0) }) else {
                app.logger.warning("Job \(job.kind) \(jobID) finished after its lease passed to another worker.")
                return
            }
        } catch is JobInterrupted {
            try? await queue.handBack(job, worker: name)
        } catch is LeaseLost {
            app.logger.warning("Job \(job.kind) \(jobID) lost its lease; another worker runs it now.")
        } catch {
            app.logger.warning("Job \(job.kind) \(jobID) failed: \(String(describing: error))")
            _ = try? await queue.fail(job, worker: name, error: String(describing: error))
        }
    }

    /// On SQLite, after taking the queue's ownership: what a dead process held runs again at once.
    func handBackAbandoned(app: Application) async throws {
        let jobs = try await app.jobs.handBackAbandoned()
        for handler in handlers.withLockedValue({ Array($0.values) }) {
            try await handler.handBackAbandoned(db: app.db)
        }
        if jobs > 0 { app.logger.notice("Handed back \(jobs) job(s) left running by a process that stopped.") }
    }

    /// Starts the polling loop (server only). `acquire` is asked before each round until it says yes: on SQLite it takes
    /// the queue's ownership, so a process started while an old one still stops (an overlapping deploy) takes over
    /// the queue as soon as the old one lets go, instead of never running jobs.
    func start(app: Application, every interval: Duration = .seconds(1),
               acquire: @escaping @Sendable () async throws -> Bool = { true }) {
        stopping.withLockedValue { $0 = false }
        let newTask = Task { [weak app] in
            var owner = false
            while !self.isStopping {
                guard let app else { return }
                do {
                    if !owner { owner = try await acquire() }
                    if owner {
                        try await self.runDue(app: app)
                        if Date().timeIntervalSince(self.lastPrune.withLockedValue { $0 }) > 3600 {
                            self.lastPrune.withLockedValue { $0 = Date() }
                            let pruned = try await app.jobs.prune(keeping: app.settings.jobRetention)
                            if pruned > 0 { app.logger.info("Removed \(pruned) finished job(s) older than the retention.") }
                        }
                    }
                } catch {
                    app.logger.warning("Job worker: \(error)")
                }
                try? await Task.sleep(for: owner ? interval : .seconds(5))
            }
        }
        task.withLockedValue { $0 = newTask }
    }

    /// Asks running jobs to finish the work in hand and hand back the rest, and waits until they have.
    func stop() async {
        stopping.withLockedValue { $0 = true }
        let running = task.withLockedValue { task -> Task<Void, Never>? in
            defer { task = nil }
            return task
        }
        await running?.value
    }

    private struct LeaseLost: Error {}
}

extension Application {
    private struct JobWorkerKey: StorageKey { typealias Value = JobWorker }

    /// Created in `configure`, before any request or job runs.
    var jobWorker: JobWorker {
        get { storage[JobWorkerKey.self]! }
        set { storage[JobWorkerKey.self] = newValue }
    }

    var jobs: JobQueue { JobQueue(db: db, clock: clock, lease: settings.jobLease) }
}
