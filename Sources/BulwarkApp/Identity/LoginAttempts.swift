import Fluent
import NIOConcurrencyHelpers
import SQLKit
import Vapor

/// The rules around guessing: a per-account attempt budget, failures counted atomically in the database (parallel
/// wrong guesses each count), locks read fresh after the password check, and one-time use of each TOTP time step.
struct LoginAttempts: Sendable {
    let app: Application
    let db: any Database
    let now: Date

    /// Counts an attempt against the account, whoever makes it (per-address limits come from the auth category).
    func spendAccountBudget(email: String) async throws {
        guard let rule = app.settings.rateLimits[.auth] else { return }
        // Hashed: the key stays small whatever is typed into the email field.
        let account = RandomToken.sha256Hex(String(email.lowercased().prefix(320)))
        let decision = try await app.rateLimitStore.hit(key: "login-account:\(account)", rule: rule, now: now, db: db)
        guard decision.allowed else {
            throw APIError.rateLimited(retryAfter: decision.resetAt - Int(now.timeIntervalSince1970),
                                       message: "Too many sign-in attempts for this account; try again later.")
        }
    }

    /// Throws 429 while the account is locked, reading the lock from the database rather than an earlier copy.
    func checkNotLocked(_ userID: UUID) async throws {
        guard let row = try await db.sql.raw("SELECT locked_until FROM users WHERE id = \(bind: userID)").first(),
              let lockedUntil = try row.decode(column: "locked_until", as: Date?.self), lockedUntil > now else { return }
        throw APIError.rateLimited(retryAfter: Int(lockedUntil.timeIntervalSince(now).rounded(.up)),
                                   message: "Too many failed sign-ins; the account is locked for a while.")
    }

    /// Adds one failure in the database and locks the account when the count reaches the limit. Returns the details
    /// for the audit entry.
    func recordFailure(_ userID: UUID) async throws -> [String: JSONValue] {
        let settings = app.settings
        guard let row = try await db.sql.raw("""
            UPDATE users SET failed_logins = failed_logins + 1 WHERE id = \(bind: userID) RETURNING failed_logins
            """).first() else { return [:] }
        let failures = try row.decode(column: "failed_logins", as: Int.self)
        var details: [String: JSONValue] = ["failures": .number(Double(failures))]
        if failures >= settings.loginMaxFailures {
            let lockedUntil = now.addingTimeInterval(settings.loginLockout)
            // Only the request that crosses the limit locks; the counter starts again for the next lock.
            let locked = try await db.sql.raw("""
                UPDATE users SET locked_until = \(bind: lockedUntil), failed_logins = 0
                WHERE id = \(bind: userID) AND failed_logins >= \(bind: settings.loginMaxFailures) RETURNING id
                """).first()
            if locked != nil { details["locked_until"] = .string(ISO8601.string(lockedUntil)) }
        }
        return details
    }

    /// Accepts a TOTP time step once per person: a code seen before (even within its 90 s window) is refused.
    func consumeTOTPStep(_ step: Int64, userID: UUID) async throws -> Bool {
        try await db.sql.raw("""
            UPDATE users SET totp_last_step = \(bind: step)
            WHERE id = \(bind: userID) AND (totp_last_step IS NULL OR totp_last_step < \(bind: step)) RETURNING id
            """).first() != nil
    }

    /// A bcrypt hash of a random password at the configured cost, verified against when there is no real hash, so an
    /// unknown email or an account without a password costs the same bcrypt work as a wrong password.
    func decoyHash() async throws -> String {
        let state = app.signInState
        if let hash = state.decoyHash.withLockedValue({ $0 }) { return hash }
        let hash = try await app.passwordHasher.hash(RandomToken.make(bytes: 16))
        state.decoyHash.withLockedValue { $0 = hash }
        return hash
    }
}

struct UpdateUsersAddTOTPLastStep: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(User.schema).field("totp_last_step", .int64).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(User.schema).deleteField("totp_last_step").update()
    }
}
