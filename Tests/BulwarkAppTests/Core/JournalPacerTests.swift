@testable import BulwarkApp
import Testing

/// The pace at which writers that outrun the database are let through: spaced evenly at the database's measured
/// pace, slower as the backlog grows, not at all below the soft limit.
@Suite struct JournalPacerTests {
    let start = ContinuousClock.now

    func pacer(capacity: Int) -> JournalPacer {
        var pacer = JournalPacer()
        pacer.wrote(capacity, in: .seconds(1))
        return pacer
    }

    @Test func nobodyWaitsBelowTheSoftLimitNorBeforeTheFirstBatch() {
        var measured = pacer(capacity: 1_000)
        #expect(measured.delay(now: start, backlog: 99, soft: 100) == .zero)
        var unmeasured = JournalPacer()
        #expect(unmeasured.delay(now: start, backlog: 10_000, soft: 100) == .zero)
    }

    @Test func writersArrivingTogetherAreSpacedAtTheDatabasesPace() {
        var pacer = pacer(capacity: 1_000)
        let delays = (0..<4).map { _ in pacer.delay(now: start, backlog: 100, soft: 100) }
        #expect(delays == [.milliseconds(1), .milliseconds(2), .milliseconds(3), .milliseconds(4)])
    }

    @Test func aBacklogTwiceTheSoftLimitHalvesThePace() {
        var pacer = pacer(capacity: 1_000)
        let delays = (0..<3).map { _ in pacer.delay(now: start, backlog: 200, soft: 100) }
        #expect(delays == [.milliseconds(2), .milliseconds(4), .milliseconds(6)])
    }

    @Test func aWriterArrivingAfterItsSlotGoesStraightThrough() {
        var pacer = pacer(capacity: 1_000)
        #expect(pacer.delay(now: start, backlog: 100, soft: 100) == .milliseconds(1))
        #expect(pacer.delay(now: start + .milliseconds(5), backlog: 100, soft: 100) == .zero)
        // The next slot follows the last one given, not the first.
        #expect(pacer.delay(now: start + .milliseconds(5), backlog: 100, soft: 100) == .milliseconds(1))
    }

    @Test func fallingBelowTheSoftLimitForgetsTheQueue() {
        var pacer = pacer(capacity: 1_000)
        for _ in 0..<10 { _ = pacer.delay(now: start, backlog: 100, soft: 100) }
        #expect(pacer.delay(now: start, backlog: 50, soft: 100) == .zero)
        #expect(pacer.delay(now: start, backlog: 100, soft: 100) == .milliseconds(1))
    }

    /// A pace measured before the database slowed down cannot hold a writer long: the room wait takes over.
    @Test func nobodyIsHeldLongerThanTheLongestWait() {
        var pacer = pacer(capacity: 1)
        let delays = (0..<3).map { _ in pacer.delay(now: start, backlog: 1_000, soft: 100) }
        #expect(delays == Array(repeating: JournalPacer.longestWait, count: 3))
    }

    @Test func capacityIsAMovingAverageOfBatches() {
        var pacer = pacer(capacity: 1_000)
        pacer.wrote(2_000, in: .seconds(1))
        #expect(abs(pacer.capacity - 1_300) < 0.001)
        pacer.wrote(0, in: .seconds(1))
        pacer.wrote(10, in: .zero)
        #expect(abs(pacer.capacity - 1_300) < 0.001, "an empty or instant batch measures nothing")
    }
}
