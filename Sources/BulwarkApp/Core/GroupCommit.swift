import Fluent
import Vapor

/// Group commit: items handed in by concurrent callers are written together, in one transaction, and each caller
/// resumes once the batch holding its item is durable. High-rate writers (tracking events, send outcomes) use it so a
/// burst costs a handful of transactions rather than one per item, without "database is locked" and without losing
/// an item: a caller that got no error knows its item is stored.
///
/// `drain()` waits for everything handed in so far; after `close()` new items are refused, so nothing is written once
/// the database is being shut down.
actor GroupCommit<Item: Sendable> {
    typealias Write = @Sendable (_ items: [Item], _ db: any Database) async throws -> Void

    private let db: any Database
    private let write: Write
    private let maxBatch: Int
    private let maxPending: Int
    private let gatherDelay: Duration
    private var pending: [(Item, CheckedContinuation<Void, any Error>)] = []
    private var flushing: Task<Void, Never>?
    private var closed = false

    struct Closed: Error, CustomStringConvertible {
        var description: String { "the writer is shutting down" }
    }

    /// More items wait than the writer holds: the caller should answer "try again shortly" (503 with Retry-After).
    struct Full: Error, CustomStringConvertible {
        var description: String { "the writer is saturated" }
    }

    /// With no `gatherDelay`, a batch is whatever arrived while the previous one was being written: one item alone
    /// costs no waiting, and a burst still shares transactions.
    init(db: any Database, maxBatch: Int = 500, maxPending: Int = 20_000, gatherDelay: Duration = .zero,
         write: @escaping Write) {
        self.db = db
        self.maxBatch = maxBatch
        self.maxPending = maxPending
        self.gatherDelay = gatherDelay
        self.write = write
    }

    /// Returns once `item` is durable, or throws what writing it threw (`Full` when too many items already wait).
    func submit(_ item: Item) async throws {
        guard !closed else { throw Closed() }
        guard pending.count < maxPending else { throw Full() }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            pending.append((item, continuation))
            if flushing == nil { flushing = Task { await self.flushLoop() } }
        }
    }

    /// Waits until every item handed in so far is written.
    func drain() async {
        while let running = flushing { await running.value }
    }

    /// Refuses new items, then waits for the ones already handed in.
    func close() async {
        closed = true
        await drain()
    }

    private func flushLoop() async {
        while !pending.isEmpty {
            if gatherDelay > .zero { try? await Task.sleep(for: gatherDelay) }
            let batch = Array(pending.prefix(maxBatch))
            pending.removeFirst(batch.count)
            let write = self.write
            do {
                try await db.transaction { db in try await write(batch.map(\.0), db) }
                for (_, continuation) in batch { continuation.resume() }
            } catch {
                // A database that is away fails every item alike: answer them all rather than wait out each one.
                guard batch.count > 1, !DatabaseAvailability.isUnavailable(error) else {
                    for (_, continuation) in batch.dropFirst() { continuation.resume(throwing: error) }
                    batch[0].1.resume(throwing: error)
                    continue
                }
                // One bad item must not fail its neighbours: each is written on its own and answered for itself.
                for (item, continuation) in batch {
                    do {
                        try await db.transaction { db in try await write([item], db) }
                        continuation.resume()
                    } catch {
                        continuation.resume(throwing: error)
                    }
                }
            }
        }
        flushing = nil
    }
}
