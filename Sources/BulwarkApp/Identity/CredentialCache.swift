import Fluent
import NIOConcurrencyHelpers
import NIOCore
import Vapor

/// Resolved credentials (Bulwark sessions and API keys), kept for a fraction of a second so the requests of a busy
/// client do not each pay the session and user lookups. Staleness is bounded two ways:
/// - in this process, anything that can take a right away (a revoked session or key, a changed or deactivated person,
///   a logout, a password change) bumps a generation that empties the cache at once;
/// - in other processes (several servers on one PostgreSQL database) an entry lives at most `ttl` (0.5 s), so a
///   revocation is refused everywhere within that.
/// Entries are keyed by a hash of the credential, never the credential itself. The cached `User` is shared by the
/// requests that hit it and must not be changed: code that changes the signed-in person loads a fresh copy
/// (`Request.freshUser()`).
final class CredentialCache: Sendable {
    struct Entry: Sendable {
        let principal: Principal
        /// The credential's own end (session expiry), checked against the app clock on each hit.
        let validUntil: Date
        let generation: UInt64
        let storedAt: NIODeadline
    }

    let ttl: TimeAmount
    let capacity: Int
    /// After an invalidation nothing is stored for this long: a change is made inside a transaction, and a request that
    /// reads the row before it commits must not cache the old value under the new generation.
    let quietPeriod: TimeAmount = .seconds(1)
    private let state = NIOLockedValueBox<(generation: UInt64, entries: [String: Entry], invalidatedAt: NIODeadline)>(
        (0, [:], .uptimeNanoseconds(0)))

    init(ttl: TimeAmount = .milliseconds(500), capacity: Int = 20_000) {
        self.ttl = ttl
        self.capacity = capacity
    }

    /// The generation to pass to `store` for a lookup starting now: an invalidation during the lookup makes the
    /// stored entry unusable.
    var generation: UInt64 { state.withLockedValue { $0.generation } }

    func principal(for key: String, now: Date) -> Principal? {
        let deadline = NIODeadline.now() - ttl
        return state.withLockedValue { state in
            guard let entry = state.entries[key] else { return nil }
            guard entry.generation == state.generation, entry.storedAt > deadline, entry.validUntil > now else {
                state.entries[key] = nil
                return nil
            }
            return entry.principal
        }
    }

    func store(_ principal: Principal, for key: String, validUntil: Date, generation: UInt64) {
        let entry = Entry(principal: principal, validUntil: validUntil, generation: generation, storedAt: .now())
        state.withLockedValue { state in
            guard generation == state.generation, NIODeadline.now() - state.invalidatedAt > quietPeriod else { return }
            // Full: drop everything (entries are cheap to rebuild; a scan for the oldest would cost more).
            if state.entries.count >= capacity { state.entries.removeAll(keepingCapacity: true) }
            state.entries[key] = entry
        }
    }

    /// Something that can take rights away changed: nothing cached before now is used again.
    func invalidateAll() {
        state.withLockedValue { state in
            state.generation &+= 1
            state.entries.removeAll(keepingCapacity: true)
            state.invalidatedAt = .now()
        }
    }
}

/// Calls `onChange` after a row of `Model` is changed or deleted through Fluent (the caches' invalidation hook).
/// Changes made with query-builder or raw updates must invalidate by themselves.
struct InvalidateOnChange<Model: FluentKit.Model>: AsyncModelMiddleware {
    let onChange: @Sendable () -> Void

    func update(model: Model, on db: any Database, next: any AnyAsyncModelResponder) async throws {
        try await next.update(model, on: db)
        onChange()
    }

    func delete(model: Model, force: Bool, on db: any Database, next: any AnyAsyncModelResponder) async throws {
        try await next.delete(model, force: force, on: db)
        onChange()
    }

    func softDelete(model: Model, on db: any Database, next: any AnyAsyncModelResponder) async throws {
        try await next.softDelete(model, on: db)
        onChange()
    }
}

extension Application {
    private struct CredentialCacheKey: StorageKey { typealias Value = CredentialCache }
    private struct RecordCacheKey: StorageKey { typealias Value = RecordCache }

    /// Clients and companies by id, for the lookups nearly every request makes (see `RecordCache`).
    var recordCache: RecordCache {
        get { storage[RecordCacheKey.self]! }
        set { storage[RecordCacheKey.self] = newValue }
    }

    var credentialCache: CredentialCache {
        get { storage[CredentialCacheKey.self]! }
        set { storage[CredentialCacheKey.self] = newValue }
    }

    /// Sets up the caches and the hooks that empty them.
    func useCredentialCache() {
        let cache = CredentialCache()
        credentialCache = cache
        databases.middleware.use(InvalidateOnChange<User> { cache.invalidateAll() })
        databases.middleware.use(InvalidateOnChange<AuthSession> { cache.invalidateAll() })
        databases.middleware.use(InvalidateOnChange<APIKey> { cache.invalidateAll() })
        let records = RecordCache()
        recordCache = records
        databases.middleware.use(InvalidateOnChange<Client> { records.invalidateAll() })
        databases.middleware.use(InvalidateOnChange<Company> { records.invalidateAll() })
    }
}

extension Request {
    /// The signed-in person as the database holds them now, to change (the principal's copy may be shared).
    func freshUser() async throws -> User {
        guard let user = try await User.find(try principal().userID, on: db) else { throw APIError.unauthorized() }
        return user
    }
}
