import Fluent
import NIOConcurrencyHelpers
import NIOCore
import Vapor

/// Resolved credentials (Bulwark sessions and API keys), kept for half a second so the requests of a busy client do
/// not each pay the session and user lookups. In this process anything that can take a right away (a revoked session
/// or key, a changed or deactivated person, a logout, a password change) empties it at once; other processes (several
/// servers on one PostgreSQL database) refuse a revoked credential within the lifetime (see `ShortLivedCache`).
/// Entries are keyed by a hash of the credential, never the credential itself. The cached `User` is shared by the
/// requests that hit it and must not be changed: code that changes the signed-in person loads a fresh copy
/// (`Request.freshUser()`).
final class CredentialCache: Sendable {
    private struct Entry: Sendable {
        let principal: Principal
        /// The credential's own end (session expiry), checked against the app clock on each hit.
        let validUntil: Date
    }

    private let entries: ShortLivedCache<Entry>

    init(ttl: TimeAmount = .milliseconds(500), capacity: Int = 20_000) {
        entries = ShortLivedCache(ttl: ttl, capacity: capacity, refreshAfter: .nanoseconds(ttl.nanoseconds / 2))
    }

    /// The generation to pass to `store` for a lookup starting now.
    var generation: UInt64 { entries.generation }

    func principal(for key: String, now: Date) -> Principal? {
        entries.value(for: key, usable: { $0.validUntil > now })?.principal
    }

    func store(_ principal: Principal, for key: String, validUntil: Date, generation: UInt64) {
        entries.store(Entry(principal: principal, validUntil: validUntil), for: key, generation: generation)
    }

    func invalidateAll() { entries.invalidateAll() }
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
