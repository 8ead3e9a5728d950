import Foundation

/// Background work that re-reads a large table (a list's full count, the training sync's check for newcomers) is
/// spaced by what it last cost (timed, or estimated from the rows it counted). Such work takes a core for as long as
/// it runs, and on a small machine the requests meanwhile queue behind it: at a million people, a 0.37 s count every
/// 30 s put a list's p99 at 386 ms, and the sync's two counts every minute showed the same way. Spaced at `costFactor` times its cost, it takes at most 0.2%
/// of a core; work that costs little keeps its usual cadence.
enum BackgroundBudget {
    static let costFactor: Double = 500

    /// How long to wait after work that took `cost` seconds: at least `floor`.
    static func interval(after cost: TimeInterval, floor: TimeInterval) -> TimeInterval { max(floor, cost * costFactor) }

    /// The work's result and how long it took, in seconds.
    static func measure<T>(_ work: () async throws -> T) async rethrows -> (value: T, cost: TimeInterval) {
        let started = ContinuousClock.now
        let value = try await work()
        let elapsed = ContinuousClock.now - started
        return (value, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
    }
}
