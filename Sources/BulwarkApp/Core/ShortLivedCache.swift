import NIOConcurrencyHelpers
import NIOCore

/// Values kept for a fraction of a second, for lookups nearly every request makes (credentials, tenant records).
/// Staleness is bounded two ways: in this process, `invalidateAll()` (called by whatever changed the data) empties the
/// cache at once, and nothing is stored for `quietPeriod` after it (a change commits after the hook that announced it,
/// so a lookup that read the old row meanwhile must not store it); in other processes an entry lives at most `ttl`.
/// A lookup takes `generation` before it reads the database and passes it to `store`: an invalidation in between
/// makes the value unstorable. Full: everything is dropped (entries are cheap to rebuild; finding the oldest is not).
final class ShortLivedCache<Value: Sendable>: Sendable {
    let ttl: TimeAmount
    let capacity: Int
    let quietPeriod: TimeAmount

    private struct Entry {
        let value: Value
        let generation: UInt64
        let storedAt: NIODeadline
    }

    private let state = NIOLockedValueBox<(generation: UInt64, entries: [String: Entry], invalidatedAt: NIODeadline)>(
        (0, [:], .uptimeNanoseconds(0)))

    init(ttl: TimeAmount, capacity: Int, quietPeriod: TimeAmount = .seconds(1)) {
        self.ttl = ttl
        self.capacity = capacity
        self.quietPeriod = quietPeriod
    }

    var generation: UInt64 { state.withLockedValue { $0.generation } }

    /// The value stored under `key`, unless it is older than `ttl`, from before an invalidation, or `usable` refuses
    /// it (then it is dropped).
    func value(for key: String, usable: (Value) -> Bool = { _ in true }) -> Value? {
        let oldest = NIODeadline.now() - ttl
        return state.withLockedValue { state in
            guard let entry = state.entries[key] else { return nil }
            guard entry.generation == state.generation, entry.storedAt > oldest, usable(entry.value) else {
                state.entries[key] = nil
                return nil
            }
            return entry.value
        }
    }

    func store(_ value: Value, for key: String, generation: UInt64) {
        let entry = Entry(value: value, generation: generation, storedAt: .now())
        state.withLockedValue { state in
            guard generation == state.generation, NIODeadline.now() - state.invalidatedAt > quietPeriod else { return }
            if state.entries.count >= capacity { state.entries.removeAll(keepingCapacity: true) }
            state.entries[key] = entry
        }
    }

    /// Something changed: nothing stored before now is used again.
    func invalidateAll() {
        state.withLockedValue { state in
            state.generation &+= 1
            state.entries.removeAll(keepingCapacity: true)
            state.invalidatedAt = .now()
        }
    }
}
