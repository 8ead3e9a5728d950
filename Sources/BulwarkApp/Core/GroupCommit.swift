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
    private let gatherDelay: Duration
    private var pending: [(Item, CheckedContinuation<Void, any Error>)] = []
    private var flushing: Task<Void, Never>?
    private var closed = false

    struct Closed: Error, CustomStringConvertible {
        var description: String { "the writer is shutting down" }
    }

    init(db: any Database, maxBatch: Int = 500, gatherDelay: Duration = .milliseconds(2), write: @escaping Write) {
        self.db = db
        self.maxBatch = maxBatch
        self.gatherDelay = gatherDelay
        self.write = write
    }

    /// Returns once `item` is durable, or throws what writing its batch threw.
    func submit(_ item: Item) async throws {
        guard !closed else { throw Closed() }
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
            // A moment for the rest of a burst to join this batch.
            try? await Task.sleep(for: gatherDelay)
            let batch = Array(pending.prefix(maxBatch))
            pending.removeFirst(batch.count)
            let items = batch.map(\.0)
            let write = self.write
            do {
                try await db.transaction { db in try await write(items, db) }
                for (_, continuation) in batch { continuation.resume() }
            } catch {
                for (_, continuation) in batch { continuation.resume(throwing: error) }
            }
        }
        flushing = nil
    }
}
