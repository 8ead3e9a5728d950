@testable import BulwarkApp
import Fluent
import NIOConcurrencyHelpers
import Testing
import Vapor

@Suite struct JobQueueTests {
    struct Payload: Codable { let n: Int }

    @Test func claimsDueJobsOnceAndCompletes() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let queue = app.jobs
            #expect(try await queue.enqueue("test.a", payload: Payload(n: 1)))
            #expect(try await queue.enqueue("test.b", payload: Payload(n: 2), runAt: clock.now().addingTimeInterval(60)))
            let first = try await queue.claim(limit: 10, worker: "w1")
            #expect(first.map(\.kind) == ["test.a"])
            #expect(try await queue.claim(limit: 10, worker: "w2").isEmpty, "a running job is not claimed twice")
            #expect(try await queue.complete(first[0], worker: "w2") == false, "only the lease holder completes")
            #expect(try await queue.complete(first[0], worker: "w1"))
            clock.advance(by: 61)
            let later = try await queue.claim(limit: 10, worker: "w1")
            #expect(later.map(\.kind) == ["test.b"])
        }
    }

    @Test func uniqueKeysAreScheduledOnce() async throws {
        try await withBulwark { app async throws in
            let queue = app.jobs
            #expect(try await queue.enqueue("test.unique", payload: Payload(n: 1), uniqueKey: "k"))
            #expect(try await queue.enqueue("test.unique", payload: Payload(n: 2), uniqueKey: "k") == false)
            #expect(try await Job.query(on: app.db).count() == 1)
        }
    }

    @Test func failuresBackOffThenDie() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            try await app.jobs.enqueue("test.fail", payload: Payload(n: 1), maxAttempts: 2)
            var job = try #require(try await app.jobs.claim(limit: 1, worker: "w").first)
            try await app.jobs.fail(job, worker: "w", error: "boom")
            var stored = try #require(try await Job.find(job.id, on: app.db))
            #expect(stored.status == "queued")
            #expect(stored.runAt == clock.now().addingTimeInterval(15))
            #expect(try await app.jobs.claim(limit: 1, worker: "w").isEmpty)
            clock.advance(by: 16)
            job = try #require(try await app.jobs.claim(limit: 1, worker: "w").first)
            try await app.jobs.fail(job, worker: "w", error: "boom again")
            stored = try #require(try await Job.find(job.id, on: app.db))
            #expect(stored.status == "dead")
            #expect(stored.lastError == "boom again")
            #expect(stored.attempts == 2)
        }
    }

    @Test func aCrashedWorkersJobIsReclaimed() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            try await app.jobs.enqueue("test.crash", payload: Payload(n: 1))
            _ = try await app.jobs.claim(limit: 1, worker: "dead-worker")
            clock.advance(by: app.settings.jobLease + 1)
            let reclaimed = try await app.jobs.claim(limit: 1, worker: "new-worker")
            #expect(reclaimed.count == 1)
            #expect(reclaimed.first?.lockedBy == "new-worker")
        }
    }

    struct CountingJob: JobHandler {
        static let kind = "test.count"
        let counter: NIOLockedValueBox<Int>
        func run(payload: String, context: JobContext) async throws { counter.withLockedValue { $0 += 1 } }
    }

    @Test func recurringJobsRunOncePerInterval() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let counter = NIOLockedValueBox(0)
            let worker = JobWorker()
            worker.register(CountingJob(counter: counter))
            worker.schedule(RecurringJob(kind: CountingJob.kind, interval: 60))
            try await worker.runDue(app: app)
            try await worker.runDue(app: app)
            #expect(counter.withLockedValue { $0 } == 1)
            clock.advance(by: 61)
            try await worker.runDue(app: app)
            #expect(counter.withLockedValue { $0 } == 2)
        }
    }
}
