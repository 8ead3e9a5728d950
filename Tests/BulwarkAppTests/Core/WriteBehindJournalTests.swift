@testable import BulwarkApp
import AsyncKit
import Fluent
import Foundation
import NIOConcurrencyHelpers
import Testing
import Vapor

/// The write-behind journal: answered items reach the database even when the process that answered is gone, once
/// each, and readers that wait for it see everything answered before them.
@Suite struct WriteBehindJournalTests {
    struct Number: JournalRecord, Equatable {
        let value: Int
        func journalRecord() -> [UInt8] {
            var record = JournalBytes()
            record.write(String(value))
            return record.bytes
        }
        init(_ value: Int) { self.value = value }
        init(journalRecord bytes: [UInt8]) throws {
            var record = JournalBytes(reading: bytes)
            guard let value = Int(try record.readString() ?? "") else { throw JournalBytes.Malformed() }
            self.value = value
        }
    }

    struct Refused: Error {}

    /// A store that remembers what it was given. 13 breaks a real constraint of the database (refused for its data,
    /// forever); it can also play a database that is away, one that fails a few times for no reason of the data, and a
    /// slow one.
    final class Store: Sendable {
        let values = NIOLockedValueBox<[Int]>([])
        let away = NIOLockedValueBox(false)
        let hiccups = NIOLockedValueBox(0)
        let delay = NIOLockedValueBox(Duration.zero)
        let batches = NIOLockedValueBox(0)
        func write(_ items: [Number], on db: any Database) async throws {
            if away.withLockedValue({ $0 }) { throw ConnectionPoolTimeoutError.connectionRequestTimeout }
            if hiccups.withLockedValue({ $0 -= 1; return $0 >= 0 }) { throw Refused() }
            if items.contains(Number(13)) { try await db.sql.raw("INSERT INTO users (id) VALUES (NULL)").run() }
            try await Task.sleep(for: delay.withLockedValue { $0 })
            batches.withLockedValue { $0 += 1 }
            values.withLockedValue { $0.append(contentsOf: items.map(\.value)) }
        }
        var stored: [Int] { values.withLockedValue { $0 } }
    }

    static func directory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("journal-\(UUID().uuidString)").path
        try JournalSegment.makeDirectory(path)
        return path
    }

    static func journal(_ app: Application, _ store: Store, directory: String?, maxBatch: Int = 2_000, maxPending: Int = 200_000,
                        segmentBytes: Int = 8 << 20) throws -> WriteBehindJournal<Number> {
        try WriteBehindJournal<Number>(db: app.db, logger: app.logger, directory: directory, prefix: "test", maxBatch: maxBatch,
                                       maxPending: maxPending, segmentBytes: segmentBytes) { items, db in
            try await store.write(items, on: db)
        }
    }

    static func files(_ directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".journal") }
    }

    /// The write runs on the writer's thread, inside the transaction Fluent opens in a task of its own: not on the
    /// event loops that answer requests.
    @Test func batchesAreWrittenOnTheWriterThread() async throws {
        try await withBulwark { app in
            let onWriterThread = NIOLockedValueBox<[Bool]>([])
            let journal = try WriteBehindJournal<Number>(db: app.db, logger: app.logger, directory: nil, prefix: "test") { _, db in
                onWriterThread.withLockedValue { $0.append(WriterThread.shared.isCurrent) }
                _ = try await db.sql.raw("SELECT 1 AS one").all()
                onWriterThread.withLockedValue { $0.append(WriterThread.shared.isCurrent) }
            }
            for n in 0..<3 { try journal.append(Number(n)) }
            await journal.caughtUp(timeout: .seconds(30))
            await journal.close()
            let seen = onWriterThread.withLockedValue { $0 }
            #expect(!seen.isEmpty && seen.allSatisfy { $0 })
        }
    }

    @Test func itemsAppendedAtOnceAreWrittenTogetherAndAReaderWaitsForThem() async throws {
        try await withBulwark { app in
            let store = Store()
            let directory = try Self.directory()
            let journal = try Self.journal(app, store, directory: directory)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for n in 1000..<1500 { group.addTask { try journal.append(Number(n)) } }
                try await group.waitForAll()
            }
            await journal.caughtUp(timeout: .seconds(30))
            #expect(store.stored.sorted() == Array(1000..<1500))
            // The 10 ms gather puts a burst into a few transactions, not one per item.
            #expect(store.batches.withLockedValue { $0 } < 50)
            // An item the database refuses for its data is dropped alone; its neighbours are stored.
            for n in [12, 13, 14] { try journal.append(Number(n)) }
            await journal.caughtUp(timeout: .seconds(30))
            #expect(store.stored.suffix(2) == [12, 14])
            // A failure that is not the data's is tried again: nothing is dropped for it.
            store.hiccups.withLockedValue { $0 = 3 }
            for n in [20, 21, 22] { try journal.append(Number(n)) }
            // A failed write lets readers go (their own queries would meet the same database); the journal retries.
            for _ in 0..<100 where store.stored.count < 505 { try await Task.sleep(for: .milliseconds(100)) }
            #expect(store.stored.suffix(3) == [20, 21, 22])
            await journal.close()
            #expect(Self.files(directory).isEmpty)
            #expect(throws: WriteBehindJournal<Number>.Closed.self) { try journal.append(Number(1)) }
        }
    }

    @Test func itemsOfAProcessThatCouldNotWriteThemAreReplayedOnceByTheNext() async throws {
        try await withBulwark { app in
            let directory = try Self.directory()
            let first = Store()
            first.away.withLockedValue { $0 = true }
            // Small segments: the items are spread over several files.
            let gone = try Self.journal(app, first, directory: directory, segmentBytes: 300)
            // Appended from many tasks at once: records written side by side into the same files stay whole.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for n in 0..<100 { group.addTask { try gone.append(Number(n)) } }
                try await group.waitForAll()
            }
            let second = Store()
            let next = try Self.journal(app, second, directory: directory)
            // While the first holds its files, nobody else replays them.
            await next.recoverOrphans()
            #expect(second.stored.isEmpty)
            await gone.close()
            #expect(first.stored.isEmpty)
            #expect(Self.files(directory).count > 1)
            await next.recoverOrphans()
            #expect(second.stored.sorted() == Array(0..<100).filter { $0 != 13 })
            #expect(Self.files(directory).isEmpty)
            // Nothing is left to replay twice.
            await next.recoverOrphans()
            #expect(second.stored.count == 99)
            await next.close()
        }
    }

    @Test func aTornLastRecordIsIgnoredAndTheCompleteOnesAreReplayed() async throws {
        try await withBulwark { app in
            let directory = try Self.directory()
            let segment = try JournalSegment.create(in: directory, prefix: "test")
            for n in [7, 8, 9] { try segment.write(JournalSegment.frame(Number(n).journalRecord())) }
            segment.release()
            // A record cut short: its length promises more bytes than follow.
            let handle = try #require(FileHandle(forWritingAtPath: segment.path))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data([40, 0, 0, 0, 1, 2, 3, 4, 5]))
            try handle.close()
            let store = Store()
            let journal = try Self.journal(app, store, directory: directory)
            await journal.recoverOrphans()
            #expect(store.stored == [7, 8, 9])
            #expect(Self.files(directory).isEmpty)
            await journal.close()
        }
    }

    @Test func rotatedFilesAreRemovedOnceTheirItemsAreStored() async throws {
        try await withBulwark { app in
            let store = Store()
            let directory = try Self.directory()
            let journal = try Self.journal(app, store, directory: directory, segmentBytes: 200)
            for n in 100..<300 { try journal.append(Number(n)) }
            #expect(Self.files(directory).count > 5)
            await journal.caughtUp(timeout: .seconds(30))
            #expect(store.stored == Array(100..<300))
            #expect(Self.files(directory).count == 1)
            await journal.close()
            #expect(Self.files(directory).isEmpty)
        }
    }

    @Test func aJournalHoldingAsManyUnwrittenItemsAsItMayRefusesMore() async throws {
        try await withBulwark { app in
            let store = Store()
            store.away.withLockedValue { $0 = true }
            let journal = try Self.journal(app, store, directory: nil, maxPending: 5)
            for n in 0..<5 { try journal.append(Number(n)) }
            #expect(throws: WriteBehindJournal<Number>.Full.self) { try journal.append(Number(5)) }
            // A reader is not held hostage by a database that is away.
            await journal.caughtUp(timeout: .seconds(30))
            store.away.withLockedValue { $0 = false }
            try await Task.sleep(for: .seconds(1))
            await journal.caughtUp(timeout: .seconds(30))
            #expect(store.stored == [0, 1, 2, 3, 4])
            try journal.append(Number(5))
            await journal.close()
            #expect(store.stored == [0, 1, 2, 3, 4, 5])
        }
    }

    /// Writers that are admitted are slowed down to the database's pace instead of refused: a burst eight times the
    /// journal's size is stored whole. The same burst without waiting is partly refused. (Paced above 10; 20 writers
    /// and room below 25 stay under the 50 the journal may hold, whatever the interleaving.)
    @Test func admittedWritersAreSlowedDownNotRefused() async throws {
        try await withBulwark { app in
            let store = Store()
            store.delay.withLockedValue { $0 = .milliseconds(20) }
            let journal = try Self.journal(app, store, directory: nil, maxPending: 50)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<20 {
                    group.addTask {
                        for n in 0..<20 {
                            await journal.admit(pacedAbove: 10, roomBelow: 25, timeout: .seconds(30))
                            try journal.append(Number(1_000 + writer * 20 + n))  // from 1,000: the store refuses 13
                        }
                    }
                }
                try await group.waitForAll()
            }
            await journal.caughtUp(timeout: .seconds(30))
            #expect(store.stored.sorted() == Array(1_000..<1_400))
            var refused = 0
            for n in 1_400..<1_800 {
                do { try journal.append(Number(n)) } catch is WriteBehindJournal<Number>.Full { refused += 1 }
            }
            #expect(refused > 0, "without waiting for room the same burst overflows")
            await journal.close()
            #expect(store.stored.count == 800 - refused)
        }
    }

    /// Above the soft backlog, writers are let through at the pace the database took the last full batches, so the
    /// backlog stays near that limit; without pacing the same writers fill the journal at once. Both run side by side,
    /// so a busy machine slows both databases alike. (Four writers: at most four are let through per
    /// `JournalPacer.longestWait` however slow the database gets, far below what a busy machine still writes.)
    @Test func pacedWritersKeepTheBacklogNearItsSoftLimit() async throws {
        try await withBulwark { app in
            func largestBacklog(pacedAbove soft: Int) async throws -> Int {
                let store = Store()
                store.delay.withLockedValue { $0 = .milliseconds(20) }
                let journal = try Self.journal(app, store, directory: nil, maxBatch: 10)
                // A full batch first: the pace is measured on full batches only.
                for n in 0..<10 { try journal.append(Number(n)) }
                await journal.caughtUp(timeout: .seconds(30))
                let largest = NIOLockedValueBox(0)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for writer in 0..<4 {
                        group.addTask {
                            for n in 0..<50 {
                                // Waiting on an event loop, as a request does.
                                await journal.admit(pacedAbove: soft, roomBelow: 10_000, timeout: .seconds(30), on: app.eventLoopGroup.any())
                                try journal.append(Number(100 + writer * 50 + n))
                                let backlog = journal.backlog
                                largest.withLockedValue { $0 = max($0, backlog) }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                await journal.close()
                #expect(store.stored.count == 210)
                return largest.withLockedValue { $0 }
            }
            async let paced = largestBacklog(pacedAbove: 20)
            async let unpaced = largestBacklog(pacedAbove: 10_000)
            let (pacedLargest, unpacedLargest) = try await (paced, unpaced)
            #expect(unpacedLargest > 150, "unpaced: the 200 appends outrun the database")
            #expect(pacedLargest < unpacedLargest / 2, "paced: the backlog stays near 20 (\(pacedLargest) against \(unpacedLargest))")
        }
    }

    /// While the database is away nobody is held: no room will come soon, and each hit would only be held. (The pace
    /// was measured before it went away.)
    @Test func nobodyWaitsForRoomWhileTheDatabaseIsAway() async throws {
        try await withBulwark { app in
            let store = Store()
            let journal = try Self.journal(app, store, directory: nil, maxBatch: 5, maxPending: 50)
            for n in 0..<5 { try journal.append(Number(n)) }
            await journal.caughtUp(timeout: .seconds(30))
            store.away.withLockedValue { $0 = true }
            for n in 100..<110 { try journal.append(Number(n)) }
            // The flusher has failed three times by now; its next try (which would release a waiter) is about 700 ms off.
            try await Task.sleep(for: .milliseconds(700))
            let waited = await ContinuousClock().measure { await journal.admit(pacedAbove: 2, roomBelow: 5, timeout: .seconds(20)) }
            #expect(waited < .milliseconds(150))
            store.away.withLockedValue { $0 = false }
            // The flusher tries again after its back-off (a failed try releases waiting readers).
            for _ in 0..<100 where store.stored.count < 15 { try await Task.sleep(for: .milliseconds(100)) }
            #expect(store.stored == Array(0..<5) + Array(100..<110))
            await journal.close()
        }
    }

    @Test func aReaderWaitsForABacklogNoLongerThanItsTimeout() async throws {
        try await withBulwark { app in
            let store = Store()
            store.delay.withLockedValue { $0 = .seconds(2) }
            let journal = try Self.journal(app, store, directory: nil)
            try journal.append(Number(1))
            let clock = ContinuousClock()
            let waited = await clock.measure { await journal.caughtUp(timeout: .milliseconds(200)) }
            #expect(waited < .seconds(1.5) && store.stored.isEmpty)
            await journal.caughtUp(timeout: .seconds(30))
            #expect(store.stored == [1])
            await journal.close()
        }
    }

    @Test func trackingHitsSurviveTheirRecordAndAReplayStoresThemOnce() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let profile = JSON(try await app.send(.POST, "/api/v1/phishing/sending-profiles", token: tenant.token, json: [
                "name": "Relay", "host": "127.0.0.1", "port": 2525, "security": "none", "envelope_from": "b@acme.test"]))
            let campaign = try await PhishingFactory.launched(app, tenant: tenant, profileID: try #require(profile["data"]["id"].string),
                                                              templates: [try await PhishingFactory.builtinTemplate(app)])
            let simulation = try #require(try await PhishingFactory.simulations(app, campaign: campaign).first)
            let hit = TrackingHit(token: simulation.token, kind: "click", occurredAt: Date(timeIntervalSince1970: 1_800_000_000.25),
                                  ip: "192.0.2.1", userAgent: "Mail \u{1F4E7}", isHead: false, details: #"{"fields":["email"]}"#)
            #expect(try TrackingHit(journalRecord: hit.journalRecord()) == hit)
            #expect(throws: JournalBytes.Malformed.self) { try TrackingHit(journalRecord: Array(hit.journalRecord().dropLast(3))) }
            let unknown = TrackingHit(token: String(repeating: "x", count: 32), kind: "open", occurredAt: Date(), ip: nil,
                                      userAgent: "Mail", isHead: false, details: nil)
            let events = try await TrackingEventWriter.resolve([hit, unknown], detector: BotDetector(), on: app.db).map(\.event)
            #expect(events.map(\.simulationID) == [simulation.id!], "an unknown token records nothing")
            let event = try #require(events.first)
            #expect(event.id == hit.id && event.botReason == nil && event.details == hit.details)
            try await app.db.transaction { db in try await TrackingEventWriter.write([event], on: db) }
            try await app.db.transaction { db in try await TrackingEventWriter.write([event], on: db) }
            let stored = try await PhishingEvent.query(on: app.db).filter(\.$simulationID == simulation.id!).all()
            #expect(stored.map(\.id) == [event.id])
            let progressed = try #require(try await Simulation.find(simulation.id, on: app.db))
            #expect(progressed.clickedAt != nil && progressed.openedAt != nil)

            // An event the database refuses (its simulation gone) fails its batch as a data error, which the journal
            // drops alone; not as a closed connection, which it would retry forever. The prepared statements still
            // serve the next batch.
            let orphan = TrackingEvent(simulationID: UUID(), campaignID: event.campaignID, clientID: event.clientID, kind: "open",
                                       occurredAt: Date(), ip: nil, userAgent: nil, botReason: nil, details: nil)
            for _ in 0..<3 {
                do {
                    try await app.db.transaction { db in
                        try await db.useGenericPlans()
                        try await TrackingEventWriter.write([orphan], on: db)
                    }
                    Issue.record("an event of no simulation was stored")
                } catch {
                    #expect(DatabaseAvailability.isDataError(error), "\(String(reflecting: error))")
                }
            }
            let open = TrackingEvent(simulationID: simulation.id!, campaignID: event.campaignID, clientID: event.clientID, kind: "open",
                                     occurredAt: Date(), ip: nil, userAgent: nil, botReason: nil, details: nil)
            try await app.db.transaction { db in
                try await db.useGenericPlans()
                try await TrackingEventWriter.write([open], on: db)
            }
            #expect(try await PhishingEvent.query(on: app.db).filter(\.$simulationID == simulation.id!).count() == 2)
        }
    }
}
