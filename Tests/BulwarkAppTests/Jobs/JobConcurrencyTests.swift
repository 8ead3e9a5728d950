@testable import BulwarkApp
import Fluent
import NIOConcurrencyHelpers
import SQLKit
import Testing
import Vapor

/// Jobs of different kinds run side by side; recurring jobs reuse their row; finished jobs are pruned.
@Suite struct JobConcurrencyTests {
    struct Payload: Codable { let n: Int }

    /// Blocks until the test opens the gate.
    struct GateJob: JobHandler {
        static let kind = "test.gate"
        let open: NIOLockedValueBox<Bool>
        func run(payload: String, context: JobContext) async throws {
            while !open.withLockedValue({ $0 }) { try await Task.sleep(for: .milliseconds(20)) }
        }
    }

    struct QuickJob: JobHandler {
        static let kind = "test.quick"
        let runs: NIOLockedValueBox<Int>
        func run(payload: String, context: JobContext) async throws { runs.withLockedValue { $0 += 1 } }
    }

    @Test func aSlowJobDoesNotHoldUpJobsOfOtherKinds() async throws {
        try await withBulwark { app in
            let gate = NIOLockedValueBox(false)
            let quick = NIOLockedValueBox(0)
            let worker = JobWorker()
            worker.register(GateJob(open: gate))
            worker.register(QuickJob(runs: quick))
            try await app.jobs.enqueue(GateJob.kind, payload: Payload(n: 0))
            try await app.jobs.enqueue(GateJob.kind, payload: Payload(n: 1))
            for n in 0..<3 { try await app.jobs.enqueue(QuickJob.kind, payload: Payload(n: n)) }
            async let ran = worker.runDue(app: app, poll: .milliseconds(50))
            // The quick jobs all run while the first slow one is still blocked, and the second slow one waits its turn
            // (one job of a kind at a time in a worker).
            for _ in 0..<500 where quick.withLockedValue({ $0 }) < 3 { try await Task.sleep(for: .milliseconds(20)) }
            #expect(quick.withLockedValue { $0 } == 3)
            #expect(try await Job.query(on: app.db).filter(\.$kind == GateJob.kind).filter(\.$status == "running").count() == 1)
            gate.withLockedValue { $0 = true }
            #expect(try await ran == 5)
            #expect(try await Job.query(on: app.db).filter(\.$status == "done").count() == 5)
        }
    }

    @Test func aRecurringJobReusesItsRowAndFinishedJobsArePruned() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let quick = NIOLockedValueBox(0)
            let worker = JobWorker()
            worker.register(QuickJob(runs: quick))
            worker.schedule(RecurringJob(kind: QuickJob.kind, interval: 2))
            for _ in 0..<5 {
                try await worker.runDue(app: app)
                clock.advance(by: 2)
            }
            #expect(quick.withLockedValue { $0 } == 5)
            // Five runs, one row: queued again for its next slot each time.
            let rows = try await Job.query(on: app.db).all()
            #expect(rows.count == 1)
            #expect(rows.first?.status == "queued")

            try await app.jobs.enqueue("test.other", payload: Payload(n: 1))
            let other = try #require(try await app.jobs.claim(limit: 1, worker: "w", excludingKinds: [QuickJob.kind]).first)
            #expect(other.kind == "test.other")
            #expect(try await app.jobs.complete(other, worker: "w"))
            #expect(try await app.jobs.prune(keeping: 3600) == 0)
            clock.advance(by: 3601)
            #expect(try await app.jobs.prune(keeping: 3600) == 1)
            #expect(try await Job.query(on: app.db).count() == 1, "the recurring job is never pruned")
        }
    }
}
