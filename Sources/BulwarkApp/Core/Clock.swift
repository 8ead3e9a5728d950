import NIOConcurrencyHelpers
import Vapor

/// Time source, injectable so tests control "now" without sleeping.
protocol Clock: Sendable {
    func now() -> Date
}

struct SystemClock: Clock {
    func now() -> Date { Date() }
}

/// One instant, for work stamped with the time of the request that caused it.
struct FixedClock: Clock {
    let instant: Date
    init(_ instant: Date) { self.instant = instant }
    func now() -> Date { instant }
}

/// A clock tests set and advance by hand.
final class ManualClock: Clock, @unchecked Sendable {
    // Safe: every access to `current` goes through `lock`.
    private let lock = NIOLock()
    private var current: Date

    init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) { current = start }

    func now() -> Date { lock.withLock { current } }
    func advance(by seconds: TimeInterval) { lock.withLock { current += seconds } }
}

extension Application {
    private struct ClockKey: StorageKey { typealias Value = any Clock }

    var clock: any Clock {
        get { storage[ClockKey.self] ?? SystemClock() }
        set { storage[ClockKey.self] = newValue }
    }
}

extension Request {
    var now: Date { application.clock.now() }
}
