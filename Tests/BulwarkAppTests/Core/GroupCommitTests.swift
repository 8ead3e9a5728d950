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
            let writer = GroupCommit<Int>(db: app.db, maxPending: 5) { _, _ in
                while !gate.withLockedValue({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
            }
            // The first item is being written (blocked); five more wait; the next is refused.
            let waiting = Task { await withTaskGroup(of: Void.self) { group in
                for n in 0..<6 { group.addTask { try? await writer.submit(n) } }
            } }
            try await Task.sleep(for: .milliseconds(300))
            await #expect(throws: GroupCommit<Int>.Full.self) { try await writer.submit(99) }
            gate.withLockedValue { $0 = true }
            await waiting.value
            try await writer.submit(100)
            await writer.close()
        }
    }
}
