@testable import BulwarkApp
import NIOConcurrencyHelpers
import NIOCore
import Testing

@Suite struct ShortLivedCacheTests {
    private final class Time: Sendable {
        private let current = NIOLockedValueBox(NIODeadline.uptimeNanoseconds(1_000_000_000_000))
        var now: NIODeadline { current.withLockedValue { $0 } }
        func advance(milliseconds: Int64) { current.withLockedValue { $0 = $0 + .milliseconds(milliseconds) } }
    }

    private func cache(_ time: Time, refreshAfter: TimeAmount? = .milliseconds(500)) -> ShortLivedCache<String> {
        ShortLivedCache(ttl: .seconds(1), capacity: 10, quietPeriod: .zero, refreshAfter: refreshAfter, now: { time.now })
    }

    /// In the second half of its life an entry is refreshed by one caller (told "not cached") while the others keep
    /// getting it; the refreshed value lives a full lifetime from its own store.
    @Test func oneCallerRefreshesWhileTheOthersKeepTheValue() {
        let time = Time()
        let cache = cache(time)
        cache.store("first", for: "k", generation: cache.generation)
        time.advance(milliseconds: 400)
        #expect(cache.value(for: "k") == "first")
        time.advance(milliseconds: 200)
        #expect(cache.value(for: "k") == nil, "the first caller past the half refreshes")
        #expect(cache.value(for: "k") == "first")
        #expect(cache.value(for: "k") == "first")
        cache.store("second", for: "k", generation: cache.generation)
        time.advance(milliseconds: 900)
        #expect(cache.value(for: "k") == nil, "the refreshed value is refreshed in its turn")
        #expect(cache.value(for: "k") == "second", "stored 0.9 s ago (1.5 s after the first): still within its lifetime")
    }

    /// A refresh that never stores (the lookup failed, or found the credential revoked) leaves the old value no
    /// longer than its lifetime; then every caller misses.
    @Test func anUnrefreshedEntryStillEndsAtItsLifetime() {
        let time = Time()
        let cache = cache(time)
        cache.store("value", for: "k", generation: cache.generation)
        time.advance(milliseconds: 600)
        #expect(cache.value(for: "k") == nil)
        time.advance(milliseconds: 399)
        #expect(cache.value(for: "k") == "value")
        time.advance(milliseconds: 2)
        #expect(cache.value(for: "k") == nil)
        #expect(cache.value(for: "k") == nil)
    }

    /// Without `refreshAfter` (page anchors) an entry is served whole until its lifetime ends.
    @Test func withoutRefreshAnEntryIsServedUntilItEnds() {
        let time = Time()
        let cache = cache(time, refreshAfter: nil)
        cache.store("value", for: "k", generation: cache.generation)
        time.advance(milliseconds: 999)
        #expect(cache.value(for: "k") == "value")
        time.advance(milliseconds: 2)
        #expect(cache.value(for: "k") == nil)
    }

    /// A full cache is emptied for a new key, not for a refreshed one (which replaces its own entry).
    @Test func aRefreshOfAFullCacheKeepsTheOtherEntries() {
        let time = Time()
        let cache = cache(time)
        for index in 0..<10 { cache.store("v\(index)", for: "k\(index)", generation: cache.generation) }
        time.advance(milliseconds: 600)
        #expect(cache.value(for: "k0") == nil)
        cache.store("refreshed", for: "k0", generation: cache.generation)
        #expect(cache.value(for: "k0") == "refreshed")
        #expect(cache.value(for: "k9") == nil, "k9 is refreshed by this caller")
        #expect(cache.value(for: "k9") == "v9", "and still there for the others")
        cache.store("new", for: "k10", generation: cache.generation)
        #expect(cache.value(for: "k9") == nil && cache.value(for: "k10") == "new")
    }

    /// A refresh that read the database before an invalidation cannot store what it read.
    @Test func aRefreshStartedBeforeAnInvalidationStoresNothing() {
        let time = Time()
        let cache = cache(time)
        cache.store("old", for: "k", generation: cache.generation)
        time.advance(milliseconds: 600)
        #expect(cache.value(for: "k") == nil)
        let generation = cache.generation
        cache.invalidateAll()
        cache.store("read before the change", for: "k", generation: generation)
        #expect(cache.value(for: "k") == nil)
    }
}
