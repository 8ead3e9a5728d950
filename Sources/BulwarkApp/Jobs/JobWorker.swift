import Fluent
import NIOConcurrencyHelpers
import Vapor

/// What a job kind does. Handlers must be idempotent: a job may run again after a crash.
protocol JobHandler: Sendable {
    static var kind: String { get }
    func run(payload: String, app: Application, now: Date) async throws
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

    func register(_ handler: any JobHandler) {
        handlers.withLockedValue { $0[type(of: handler).kind] = handler }
    }

    func schedule(_ job: RecurringJob) {
        recurring.withLockedValue { $0.append(job) }
    }

    /// Ensures each recurring job has its next slot queued, then runs every due job once. Returns how many ran.
    @discardableResult
    func runDue(app: Application, batch: Int = 20) async throws -> Int {
        let now = app.clock.now()
        let queue = JobQueue(db: app.db, now: now)
        for job in recurring.withLockedValue({ $0 }) {
            let slot = Int(now.timeIntervalSince1970 / job.interval)
            try await queue.enqueue(job.kind, payload: ["slot": slot], uniqueKey: "recurring:\(job.kind)")
        }
        var ran = 0
        while true {
            let jobs = try await queue.claim(limit: batch, worker: name)
            if jobs.isEmpty { break }
            for job in jobs {
                ran += 1
                await run(job, app: app, now: now)
            }
        }
        return ran
    }

    private func run(_ job: Job, app: Application, now: Date) async {
        let queue = JobQueue(db: app.db, now: now)
        guard let handler = handlers.withLockedValue({ $0[job.kind] }) else {
            try? await queue.fail(job, error: "no handler for job kind \(job.kind)")
            return
        }
        do {
            try await handler.run(payload: job.payload, app: app, now: now)
            try await queue.complete(job)
            if let recurringJob = recurring.withLockedValue({ $0.first { $0.kind == job.kind } }) {
                try await queue.enqueue(job.kind, payload: ["slot": 0], runAt: now.addingTimeInterval(recurringJob.interval),
                                        uniqueKey: "recurring:\(job.kind)")
            }
        } catch {
            app.logger.warning("Job \(job.kind) \(job.id!) failed: \(String(describing: error))")
            try? await queue.fail(job, error: String(describing: error))
        }
    }

    /// Starts the polling loop (server only).
    func start(app: Application, every interval: Duration = .seconds(1)) {
        let newTask = Task { [weak app] in
            while !Task.isCancelled {
                guard let app else { return }
                do { try await self.runDue(app: app) } catch { app.logger.warning("Job worker: \(error)") }
                try? await Task.sleep(for: interval)
            }
        }
        task.withLockedValue { $0 = newTask }
    }

    func stop() {
        task.withLockedValue { $0?.cancel(); $0 = nil }
    }
}

/// Starts the worker when the server boots and stops it at shutdown.
struct JobWorkerLifecycle: LifecycleHandler {
    func didBoot(_ application: Application) throws {
        application.jobWorker.start(app: application)
    }

    func shutdown(_ application: Application) {
        application.jobWorker.stop()
    }
}

extension Application {
    private struct JobWorkerKey: StorageKey { typealias Value = JobWorker }

    var jobWorker: JobWorker {
        if let worker = storage[JobWorkerKey.self] { return worker }
        let worker = JobWorker()
        storage[JobWorkerKey.self] = worker
        return worker
    }

    var jobs: JobQueue { JobQueue(db: db, now: clock.now()) }
}
