@testable import BulwarkApp
import Fluent
import NIOConcurrencyHelpers
import SQLKit
import Testing
import Vapor

/// The group-commit writer: one bad item fails alone; a saturated writer refuses instead of growing without bound.
@Suite struct GroupCommitTests {
    struct Bad: Error {}

    @Test func oneBadItemFailsAloneAndItsNeighboursAreStored() async throws {
        try await withBulwark { app in
            let stored = NIOLockedValueBox<[Int]>([])
            let writer = GroupCommit<Int>(db: app.db) { items, _ in
                if items.contains(13) { throw Bad() }
                stored.withLockedValue { $0.append(contentsOf: items) }
            }
            let results = await withTaskGroup(of: (Int, Bool).self) { group in
                for n in 0..<40 {
                    group.addTask { ((try? await writer.submit(n)) != nil) ? (n, true) : (n, false) }
                }
                return await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
            }
            #expect(results.filter { !$0.value }.map(\.key) == [13])
            #expect(stored.withLockedValue { $0 }.sorted() == Array(0..<40).filter { $0 != 13 })
            await writer.close()
        }
    }

    @Test func aSaturatedWriterRefusesNewItems() async throws {
        try await withBulwark { app in
            let gate = NIOLockedValueBox(false)
            let writing = NIOLockedValueBox(0)
            // One item per write, so the first write holds exactly one item while the rest wait.
            let writer = GroupCommit<Int>(db: app.db, maxBatch: 1, maxPending: 5) { _, _ in
                writing.withLockedValue { $0 += 1 }
                while !gate.withLockedValue({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
            }
            // Whatever happens below, the gate opens in the end: a failed expectation must not hang the suite.
            let opener = Task {
                try? await Task.sleep(for: .seconds(10))
                gate.withLockedValue { $0 = true }
            }
            let first = Task { try await writer.submit(0) }
            while writing.withLockedValue({ $0 }) == 0 { try await Task.sleep(for: .milliseconds(5)) }
            // The first item is being written (held at the gate); five more wait; the next is refused.
            let waiting = (1...5).map { n in Task { try await writer.submit(n) } }
            try await Task.sleep(for: .milliseconds(200))
            await #expect(throws: GroupCommit<Int>.Full.self) { try await writer.submit(99) }
            gate.withLockedValue { $0 = true }
            try await first.value
            for task in waiting { try await task.value }
            try await writer.submit(100)
            await writer.close()
            opener.cancel()
        }
    }
}
