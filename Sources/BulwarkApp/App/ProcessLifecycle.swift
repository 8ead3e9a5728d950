import NIOConcurrencyHelpers
import Vapor

/// Start and stop of the long-lived parts, in an order that loses nothing. At start (serving processes only) the job
/// worker begins, after taking the queue's ownership on SQLite. On SIGTERM or shutdown, before the databases close
/// (Fluent's own handler runs after this one): stop accepting requests and finish those in flight, let running jobs
/// finish the message in hand and hand back the rest, then write every buffered tracking event.
struct ProcessLifecycle: LifecycleHandler {
    func didBootAsync(_ app: Application) async throws {
        // Tracking events answered by a process that was killed reach the database before this one serves; later
        // orphans (another process on this directory dying) are picked up every minute. One-off commands leave them.
        if app.isServing {
            await app.trackingWriter.recoverOrphans()
            app.journalRecovery = Task { [weak app] in
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(60))
                    guard let app, !Task.isCancelled else { return }
                    await app.trackingWriter.recoverOrphans()
                }
            }
        }
        guard app.startsJobWorker else { return }
        guard case let .sqliteFile(path) = app.settings.database else {
            app.jobWorker.start(app: app)
            return
        }
        let warned = NIOLockedValueBox(false)
        app.jobWorker.start(app: app) { [weak app] in
            guard let app else { return false }
            // Owned already (a hand-back that failed last time): only the hand-back is tried again.
            if app.queueOwnership != nil {
                try await app.jobWorker.handBackAbandoned(app: app)
                return true
            }
            guard let ownership = try QueueOwnership.acquire(forDatabaseAt: path) else {
                if !warned.withLockedValue({ let was = $0; $0 = true; return was }) {
                    app.logger.warning("Another process runs the job queue of \(path); this one runs no background jobs until it stops.")
                }
                return false
            }
            app.queueOwnership = ownership
            try await app.jobWorker.handBackAbandoned(app: app)
            if warned.withLockedValue({ $0 }) { app.logger.notice("This process now runs the job queue of \(path).") }
            return true
        }
    }

    func shutdownAsync(_ app: Application) async {
        await app.server.shutdown()
        await app.jobWorker.stop()
        await app.sendOutcomes.close()
        app.journalRecovery?.cancel()
        await app.trackingWriter.close()
        await app.rateLimitStore.flush()
        app.queueOwnership = nil
    }
}

extension Application {
    private struct StartsJobWorkerKey: StorageKey { typealias Value = Bool }
    private struct QueueOwnershipKey: StorageKey { typealias Value = QueueOwnership }
    private struct JournalRecoveryKey: StorageKey { typealias Value = Task<Void, Never> }
    private struct IsServingKey: StorageKey { typealias Value = Bool }

    /// Set by the entry point for `serve`: the process answers HTTP (and so replays tracking journals it finds).
    var isServing: Bool {
        get { storage[IsServingKey.self] ?? false }
        set { storage[IsServingKey.self] = newValue }
    }

    var journalRecovery: Task<Void, Never>? {
        get { storage[JournalRecoveryKey.self] }
        set { storage[JournalRecoveryKey.self] = newValue }
    }

    /// Set by the entry point for `serve` (unless BULWARK_DISABLE_WORKER): one-off commands never send mail.
    var startsJobWorker: Bool {
        get { storage[StartsJobWorkerKey.self] ?? false }
        set { storage[StartsJobWorkerKey.self] = newValue }
    }

    var queueOwnership: QueueOwnership? {
        get { storage[QueueOwnershipKey.self] }
        set { storage[QueueOwnershipKey.self] = newValue }
    }
}
