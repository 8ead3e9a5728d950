/// Paces the writers of a `WriteBehindJournal` that outrun its database. Waiting for room alone (until the next batch
/// is written) made waits lumpy: most writers went straight through while the few that came when the backlog was at
/// its limit waited for a whole batch, a tenth of a second or more at the tracking routes' rate. Here, above a soft
/// backlog, writers are let through one after another at the pace the database is taking items, so each waits a
/// fraction of a millisecond and nobody waits for a batch. A plain value: the journal keeps it under its lock.
struct JournalPacer: Sendable, Equatable {
    /// Items per second the database took in the last full batches' writes (a moving average); 0 before the first.
    /// The journal measures full batches only: a quiet spell's batches of a few items measure the cost of a
    /// transaction, not the pace, and would hold the next burst back.
    private(set) var capacity: Double = 0
    /// When the last writer let through was let through; nil while the backlog is below its soft limit.
    private var lastSlot: ContinuousClock.Instant?

    /// The longest a writer is held here. Past that the estimate is off (the database slowed down since); the
    /// journal's room wait takes over.
    static let longestWait = Duration.milliseconds(250)

    /// Counts a full batch the database took.
    mutating func wrote(_ items: Int, in elapsed: Duration) {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        guard items > 0, seconds > 0 else { return }
        let sample = Double(items) / seconds
        capacity = capacity == 0 ? sample : capacity * 0.7 + sample * 0.3
    }

    /// How long a writer arriving `now` waits, with `backlog` items waiting for the database. Below `soft`, none.
    /// Above it, writers are spaced at the database's pace, slowed in proportion as the backlog grows (at twice `soft`,
    /// half the pace), so the backlog settles near `soft` whatever the estimate's error.
    mutating func delay(now: ContinuousClock.Instant, backlog: Int, soft: Int) -> Duration {
        guard soft > 0, backlog >= soft, capacity > 0 else {
            lastSlot = nil
            return .zero
        }
        let rate = capacity * Double(soft) / Double(backlog)
        let slot = min(max(now, (lastSlot ?? now) + .nanoseconds(Int64(min(1e9 / rate, 1e12)))), now + Self.longestWait)
        lastSlot = slot
        return slot - now
    }
}
