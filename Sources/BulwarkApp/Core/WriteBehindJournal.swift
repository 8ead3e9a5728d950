import Fluent
import NIOConcurrencyHelpers
import Vapor

/// An item a `WriteBehindJournal` can keep in its file.
protocol JournalRecord: Sendable {
    func journalRecord() -> [UInt8]
    init(journalRecord: [UInt8]) throws
}

/// Write-behind for the highest-rate writes (tracking events): `append` returns once the item's record is in a local
/// journal file (`JournalSegment`, one `write(2)`, no database round trip), and a flusher moves items into the database
/// in large transactions. Group commit made each request wait for a transaction shared with whatever arrived while the
/// previous one ran, a few items per transaction at the tracking routes' rate; here a transaction carries everything
/// gathered over `gatherDelay`.
///
/// Nothing answered is lost: a process killed before its flusher ran leaves its segment files, and the next process
/// using the directory replays them (`recoverOrphans`) at start and every minute. Replays are idempotent: each item
/// carries its own id and `write` ignores ids already stored.
///
/// Readers that must see every item answered before they started (an authenticated request reading results) call
/// `caughtUp()`. Without a directory (the in-memory database of tests) items are kept in memory only, as the database
/// itself is.
final class WriteBehindJournal<Item: JournalRecord>: Sendable {
    typealias Write = @Sendable (_ items: [Item], _ db: any Database) async throws -> Void

    struct Full: Error, CustomStringConvertible {
        var description: String { "the journal holds as many unwritten items as it may" }
    }

    struct Closed: Error, CustomStringConvertible {
        var description: String { "the journal is shutting down" }
    }

    private struct State {
        var segment: JournalSegment?
        /// Rotated-out segments, removed once their last record is in the database.
        var retired: [JournalSegment] = []
        var pending: [Item] = []
        var appended: UInt64 = 0
        var durable: UInt64 = 0
        var waiters: [UInt64: (target: UInt64, continuation: CheckedContinuation<Void, Never>, timer: Task<Void, Never>)] = [:]
        var nextWaiter: UInt64 = 0
        var flusher: Task<Void, Never>?
        var closed = false
        /// The last write failed (the database is away): nobody waits for room then, since none will come soon.
        var failing = false
        var pacer = JournalPacer()
    }

    private let state = NIOLockedValueBox(State())
    /// Where the flusher writes.
    let db: any Database
    private let logger: Logger
    private let directory: String?
    private let prefix: String
    private let write: Write
    private let maxBatch: Int
    private let maxPending: UInt64
    private let gatherDelay: Duration
    private let segmentBytes: Int

    init(db: any Database, logger: Logger, directory: String?, prefix: String, maxBatch: Int = 2_000,
         maxPending: Int = 100_000, gatherDelay: Duration = .milliseconds(10), segmentBytes: Int = 8 << 20,
         write: @escaping Write) throws {
        self.db = db
        self.logger = logger
        self.directory = directory
        self.prefix = prefix
        self.maxBatch = maxBatch
        self.maxPending = UInt64(maxPending)
        self.gatherDelay = gatherDelay
        self.segmentBytes = segmentBytes
        self.write = write
        if let directory { try JournalSegment.makeDirectory(directory) }
    }

    /// Keeps `item`: once this returns, the item reaches the database even if this process is killed now. The file
    /// write happens outside the lock (`O_APPEND` places each record whole), so two event loops appending at once do
    /// not queue behind each other's system call.
    func append(_ item: Item) throws {
        let record = directory == nil ? nil : JournalSegment.frame(item.journalRecord())
        let segment: JournalSegment? = try state.withLockedValue { state in
            guard !state.closed else { throw Closed() }
            guard state.appended - state.durable < maxPending else { throw Full() }
            guard let directory, let record else { return nil }
            if state.segment == nil || state.segment!.size >= segmentBytes {
                let next = try JournalSegment.create(in: directory, prefix: prefix)
                if let current = state.segment { state.retired.append(current) }
                state.segment = next
            }
            state.segment!.reserve(record.count)
            return state.segment
        }
        var failure: (any Error)?
        if let segment, let record {
            do { try segment.write(record) } catch { failure = error }
        }
        try state.withLockedValue { state in
            segment?.writers -= 1
            if let failure {
                // What follows a failed or short write in that file could not be read back: the next append starts
                // a new one.
                if let current = state.segment, current === segment {
                    state.retired.append(current)
                    state.segment = nil
                }
                throw failure
            }
            state.appended += 1
            segment?.lastSequence = state.appended
            state.pending.append(item)
            if state.flusher == nil {
                state.flusher = Task(executorPreference: WriterThread.shared) { await self.flushLoop() }
            }
        }
    }

    /// Returns once every item appended before the call is in the database, the database cannot be reached (the
    /// caller's own queries will say so), or `timeout` passed: a reader is never held longer than that by a backlog.
    func caughtUp(timeout: Duration = .seconds(2)) async {
        let target = state.withLockedValue { $0.durable < $0.appended && !$0.closed ? $0.appended : 0 }
        await waitUntilDurable(target, timeout: timeout)
    }

    /// Holds a writer that can wait (a tracking hit) while the database falls behind, instead of refusing it once the
    /// journal is full: a refused click is a broken link for the person who clicked, a slower one is not. Above
    /// `pacedAbove` waiting items, writers are let through at the database's pace (`JournalPacer`, measured over full
    /// batches), each waiting a little (at most `JournalPacer.longestWait`); at `roomBelow` they wait for room outright.
    /// `timeout` bounds the whole wait. Nobody waits while the database is away: no room will come soon.
    /// With `eventLoop` (the request's), the paced wait is a task scheduled on it: `Task.sleep` goes through
    /// Dispatch's timer thread on Linux (a `timerfd` call, a thread woken, a hop back), 4 µs a hit in threads of
    /// its own plus the hops, when every hit is paced.
    func admit(pacedAbove soft: Int, roomBelow hard: Int, timeout: Duration, on eventLoop: (any EventLoop)? = nil) async {
        let clock = ContinuousClock()
        let arrived = clock.now
        let delay = state.withLockedValue { state -> Duration in
            guard !state.closed, !state.failing else { return .zero }
            return state.pacer.delay(now: arrived, backlog: Int(state.appended - state.durable), soft: soft)
        }
        // Shorter waits cost more in timers than they pace; the next writer's slot is later by as much anyway.
        if delay > .microseconds(50) {
            let wait = min(delay, timeout)
            if let eventLoop {
                let nanoseconds = wait.components.seconds * 1_000_000_000 + wait.components.attoseconds / 1_000_000_000
                try? await eventLoop.scheduleTask(in: .nanoseconds(nanoseconds)) {}.futureResult.get()
            } else {
                try? await Task.sleep(for: wait)
            }
        }
        let left = timeout - (clock.now - arrived)
        if left > .zero { await room(below: hard, timeout: left) }
    }

    /// Items appended and not yet in the database.
    var backlog: Int { state.withLockedValue { Int($0.appended - $0.durable) } }

    /// Returns once fewer than `backlog` items wait for the database, or `timeout` passed.
    func room(below backlog: Int, timeout: Duration) async {
        precondition(backlog > 0, "room below \(backlog) items")
        let target = state.withLockedValue { state -> UInt64 in
            guard !state.closed, !state.failing, state.appended - state.durable >= UInt64(backlog) else { return 0 }
            return state.appended - UInt64(backlog) + 1
        }
        await waitUntilDurable(target, timeout: timeout)
    }

    /// Waits until the first `target` items are in the database (0: not at all), at most `timeout`.
    private func waitUntilDurable(_ target: UInt64, timeout: Duration) async {
        guard target > 0 else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let waiting = state.withLockedValue { state in
                if state.durable >= target { return false }
                state.nextWaiter += 1
                let waiter = state.nextWaiter
                // Cancelled when the flusher answers first.
                let timer = Task {
                    guard (try? await Task.sleep(for: timeout)) != nil else { return }
                    self.state.withLockedValue { $0.waiters.removeValue(forKey: waiter) }?.continuation.resume()
                }
                state.waiters[waiter] = (target, continuation, timer)
                return true
            }
            if !waiting { continuation.resume() }
        }
    }

    /// Refuses new items and writes the ones it holds. If the database cannot take them, their segments stay on disk
    /// for the next start.
    func close() async {
        state.withLockedValue { $0.closed = true }
        // An append that passed its check before the close may still be writing, or may start a flusher after it.
        while true {
            let (flusher, busy) = state.withLockedValue { state in
                (state.flusher, (state.segment?.writers ?? 0) + state.retired.reduce(0) { $0 + $1.writers } > 0)
            }
            if let flusher { await flusher.value; continue }
            if !busy { break }
            try? await Task.sleep(for: .milliseconds(1))
        }
        // A waiter that came in after the flusher's last release would otherwise wait for its own timer.
        resumeWaiters(all: true)
        state.withLockedValue { state in
            guard state.durable == state.appended else { return }
            state.segment?.remove()
            state.segment = nil
            for segment in state.retired { segment.remove() }
            state.retired = []
        }
    }

    /// Writes the items of segments whose process is gone (killed, crashed) and removes them.
    func recoverOrphans() async {
        guard let directory else { return }
        for segment in JournalSegment.orphans(in: directory, prefix: prefix) {
            var items: [Item] = []
            for record in segment.records() {
                do { items.append(try Item(journalRecord: record)) } catch {
                    logger.error("Skipped an unreadable record in \(segment.path)")
                }
            }
            do {
                var start = 0
                while start < items.count {
                    let batch = Array(items[start..<min(start + maxBatch, items.count)])
                    try await writeTolerating(batch[...])
                    start += batch.count
                }
                segment.remove()
                if !items.isEmpty { logger.notice("Replayed \(items.count) items of \(segment.path)") }
            } catch {
                segment.release()
                logger.warning("Could not replay \(segment.path) yet: \(String(reflecting: error))")
            }
        }
    }

    private func flushLoop() async {
        var backoff = Duration.milliseconds(200)
        while true {
            // A backlog of a full batch or more is written at once; otherwise the next few milliseconds are gathered.
            let gather = state.withLockedValue { !$0.closed && $0.pending.count < maxBatch }
            if gather, gatherDelay > .zero { try? await Task.sleep(for: gatherDelay) }
            let batch: [Item] = state.withLockedValue { state in
                let batch = Array(state.pending.prefix(maxBatch))
                state.pending.removeFirst(batch.count)
                if batch.isEmpty { state.flusher = nil }
                return batch
            }
            guard !batch.isEmpty else { return }
            while true {
                do {
                    let started = ContinuousClock.now
                    try await writeTolerating(batch[...])
                    let elapsed = ContinuousClock.now - started
                    if batch.count == maxBatch { state.withLockedValue { $0.pacer.wrote(batch.count, in: elapsed) } }
                    break
                } catch {
                    // The database is away: readers stop waiting, the batch is tried again (it is in the file, so a
                    // shutdown meanwhile leaves it for the next start).
                    state.withLockedValue { $0.failing = true }
                    resumeWaiters(all: true)
                    if state.withLockedValue({ $0.closed }) {
                        logger.warning("Tracking journal left on disk for the next start: \(String(reflecting: error))")
                        state.withLockedValue { state in
                            state.segment?.release()
                            state.segment = nil
                            for segment in state.retired { segment.release() }
                            state.retired = []
                            state.flusher = nil
                        }
                        return
                    }
                    try? await Task.sleep(for: backoff)
                    backoff = min(backoff * 2, .seconds(5))
                }
            }
            backoff = .milliseconds(200)
            state.withLockedValue { state in
                state.failing = false
                state.durable += UInt64(batch.count)
                let durable = state.durable
                state.retired.removeAll { segment in
                    guard segment.lastSequence <= durable, segment.writers == 0 else { return false }
                    segment.remove()
                    return true
                }
            }
            resumeWaiters(all: false)
        }
    }

    /// One transaction for the batch. If the data of an item fails it, the batch is split in halves until the item is
    /// alone, so its neighbours are written in a few transactions; an item the database refuses for its data (its
    /// simulation deleted meanwhile) is logged and dropped rather than blocking the journal. Any other failure is
    /// thrown: the flusher keeps the items and tries again later.
    private func writeTolerating(_ batch: ArraySlice<Item>) async throws {
        let write = self.write
        do {
            // Fluent runs the closure in a task of its own, which does not inherit the flusher's executor.
            try await db.transaction { db in
                try await withTaskExecutorPreference(WriterThread.shared) { try await write(Array(batch), db) }
            }
        } catch where !DatabaseAvailability.isUnavailable(error) {
            guard batch.count > 1 else {
                guard DatabaseAvailability.isDataError(error) else { throw error }
                return logger.error("Dropped a journal item the database refuses: \(String(reflecting: error))")
            }
            let middle = batch.startIndex + batch.count / 2
            try await writeTolerating(batch[..<middle])
            try await writeTolerating(batch[middle...])
        }
    }

    private func resumeWaiters(all: Bool) {
        let ready = state.withLockedValue { state in
            let durable = state.durable
            let ready = state.waiters.filter { all || $0.value.target <= durable }
            for key in ready.keys { state.waiters.removeValue(forKey: key) }
            return ready.values
        }
        for waiter in ready {
            waiter.timer.cancel()
            waiter.continuation.resume()
        }
    }
}
