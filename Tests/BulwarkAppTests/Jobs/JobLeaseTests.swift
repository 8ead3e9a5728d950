@testable import BulwarkApp
import Fluent
import NIOConcurrencyHelpers
import SQLKit
import Testing
import Vapor

/// Issue 8, items 2 and 3: leases taken with the clock of the moment, owned, counted, kept by heartbeats.
@Suite struct JobLeaseTests {
    struct Payload: Codable { let n: Int }

    @Test func aJobThatKillsItsProcessEndsDeadInsteadOfLooping() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            try await app.jobs.enqueue("test.crash", payload: Payload(n: 1), maxAttempts: 2)
            for worker in ["w1", "w2"] {
                // Claimed, then the process dies: nobody completes it; the lease runs out.
                #expect(try await app.jobs.claim(limit: 1, worker: worker).count == 1)
                clock.advance(by: app.settings.jobLease + 1)
            }
            #expect(try await app.jobs.claim(limit: 1, worker: "w3").isEmpty)
            let job = try #require(try await Job.query(on: app.db).first())
            #expect(job.status == "dead")
            #expect(job.attempts == 3)
            #expect(job.lastError?.contains("stopped") == true)
        }
    }

    @Test func onlyTheLeaseHolderFinishesAJob() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            try await app.jobs.enqueue("test.slow", payload: Payload(n: 1))
            let first = try #require(try await app.jobs.claim(limit: 1, worker: "slow").first)
            clock.advance(by: app.settings.jobLease + 1)
            let second = try #require(try await app.jobs.claim(limit: 1, worker: "fast").first)
            #expect(try await app.jobs.complete(second, worker: "fast"))
            // The first worker wakes up late: it can neither complete nor fail what is no longer its job.
            #expect(try await app.jobs.complete(first, worker: "slow") == false)
            #expect(try await app.jobs.fail(first, worker: "slow", error: "late") == false)
            let stored = try #require(try await Job.find(first.id, on: app.db))
            #expect(stored.status == "done")
            #expect(stored.lastError == nil)
        }
    }

    struct SleepingJob: JobHandler {
        static let kind = "test.sleep"
        let runs: NIOLockedValueBox<Int>
        func run(payload: String, context: JobContext) async throws {
            runs.withLockedValue { $0 += 1 }
            try await Task.sleep(for: .milliseconds(4500))
        }
    }

    @Test func heartbeatsKeepALongJobsLease() async throws {
        try await withBulwark(adjust: { $0.jobLease = 2 }) { app in
            let runs = NIOLockedValueBox(0)
            let worker = JobWorker()
            worker.register(SleepingJob(runs: runs))
            try await app.jobs.enqueue(SleepingJob.kind, payload: Payload(n: 1))
            async let ran = worker.runDue(app: app)
            // While it runs (three leases long), other workers find nothing to take over.
            for _ in 0..<8 {
                try await Task.sleep(for: .milliseconds(500))
                #expect(try await app.jobs.claim(limit: 1, worker: "thief").isEmpty)
            }
            #expect(try await ran == 1)
            #expect(runs.withLockedValue { $0 } == 1)
            #expect(try await Job.query(on: app.db).first()?.status == "done")
        }
    }

    struct CountingJob: JobHandler {
        static let kind = "test.count"
        let runs: NIOLockedValueBox<[Int]>
        func run(payload: String, context: JobContext) async throws {
            let n = try JSONDecoder().decode(Payload.self, from: Data(payload.utf8)).n
            runs.withLockedValue { $0.append(n) }
        }
    }

    @Test func twoWorkersAtOnceRunEachJobOnce() async throws {
        try await withBulwark { app in
            let runs = NIOLockedValueBox<[Int]>([])
            for n in 0..<60 { try await app.jobs.enqueue(CountingJob.kind, payload: Payload(n: n)) }
            let workers = [JobWorker(), JobWorker()]
            for worker in workers { worker.register(CountingJob(runs: runs)) }
            let ran = try await withThrowingTaskGroup(of: Int.self) { group in
                for worker in workers { group.addTask { try await worker.runDue(app: app, concurrency: 5) } }
                return try await group.reduce(0, +)
            }
            if ran != 60 {
                for job in try await Job.query(on: app.db).all() where job.status != "done" {
                    print("DIAG job \(job.payload) \(job.status) runAt=\(job.runAt) now=\(Date()) attempts=\(job.attempts) by=\(job.lockedBy ?? "-") err=\(job.lastError ?? "-")")
                }
            }
            #expect(ran == 60)
            #expect(runs.withLockedValue { $0 }.sorted() == Array(0..<60))
            #expect(try await Job.query(on: app.db).filter(\.$status == "done").count() == 60)
        }
    }

    struct StoppingJob: JobHandler {
        static let kind = "test.stop"
        func run(payload: String, context: JobContext) async throws {
            if context.shouldStop() { throw JobInterrupted() }
        }
    }

    @Test func aStoppedJobIsHandedBackUncounted() async throws {
        try await withBulwark { app in
            let worker = JobWorker()
            worker.register(StoppingJob())
            try await app.jobs.enqueue(StoppingJob.kind, payload: Payload(n: 1))
            worker.start(app: app, every: .milliseconds(50))
            await worker.stop()
            // Either it ran before the stop, or it is back in the queue untouched: never left running, never charged.
            let job = try #require(try await Job.query(on: app.db).first())
            #expect(job.status == "done" || (job.status == "queued" && job.attempts == 0 && job.lockedBy == nil))
        }
    }

    @Test func onSQLiteTheQueueHasOneOwnerWhoTakesBackADeadProcesssWork() async throws {
        let path = NSTemporaryDirectory() + "bulwark-queue-\(UUID().uuidString).sqlite"
        defer { for suffix in ["", "-wal", "-shm", ".jobs.lock"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        try await withBulwark(adjust: { if TestDatabase.postgresURL == nil { $0.database = .sqliteFile(path) } }) { app in
            let first = try #require(try QueueOwnership.acquire(forDatabaseAt: path))
            let second = try QueueOwnership.acquire(forDatabaseAt: path)
            #expect(second == nil, "a second process gets no ownership")
            _ = first
            try await app.jobs.enqueue("test.count", payload: Payload(n: 1))
            #expect(try await app.jobs.claim(limit: 1, worker: "dead-process").count == 1)
            // The owner hands back what a process that is gone held, at once rather than after the lease.
            let worker = JobWorker()
            let runs = NIOLockedValueBox<[Int]>([])
            worker.register(CountingJob(runs: runs))
            try await worker.handBackAbandoned(app: app)
            #expect(try await worker.runDue(app: app) == 1)
            #expect(runs.withLockedValue { $0 } == [1])
        }
    }
}
