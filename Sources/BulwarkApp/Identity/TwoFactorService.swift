import Fluent
import Vapor

/// TOTP enrolment shared by the API and the dashboard's profile page.
struct TwoFactorService: Sendable {
    let app: Application
    let db: any Database
    let now: Date

    /// Stores a new sealed secret, not yet enabled, and returns it for the authenticator app.
    func begin(for user: User, actor: AuditActor) async throws -> (secret: String, uri: String) {
        if user.totpEnabled { throw APIError.conflict("Two-factor sign-in is already enabled.") }
        let secret = TOTP.makeSecret()
        user.totpSecret = try app.secretBox.seal(secret)
        let now = self.now
        try await db.transaction { db in
            try await user.save(on: db)
            try await AuditService(db: db, now: now).record(
                AuditEvent("auth.totp_setup_started", target: ("user", user.id), companyID: user.$company.id,
                           clientID: user.$client.id), by: actor)
        }
        return (secret, TOTP.provisioningURI(secret: secret, account: user.email))
    }

    func enable(for user: User, code: String?, field: String, actor: AuditActor) async throws {
        if user.totpEnabled { throw APIError.conflict("Two-factor sign-in is already enabled.") }
        guard let sealed = user.totpSecret, let secret = try? app.secretBox.open(sealed) else {
            throw APIError.conflict("Start two-factor setup first.")
        }
        try await check(code, secret: secret, field: field, user: user)
        try await change(user, enabled: true, action: "auth.totp_enabled", actor: actor)
    }

    func disable(for user: User, code: String?, field: String, actor: AuditActor) async throws {
        guard user.totpEnabled, let sealed = user.totpSecret, let secret = try? app.secretBox.open(sealed) else {
            throw APIError.conflict("Two-factor sign-in is not enabled.")
        }
        try await check(code, secret: secret, field: field, user: user)
        user.totpSecret = nil
        try await change(user, enabled: false, action: "auth.totp_disabled", actor: actor)
    }

    /// A valid code whose time step has not been used before: the step is then spent, so the same code cannot also
    /// sign someone in.
    /// A wrong code counts as a failed sign-in: a stolen session must not be a way to guess codes freely.
    private func check(_ code: String?, secret: String, field: String, user: User) async throws {
        guard let code, !code.isEmpty else { throw APIError.validation([field: ["The \(field) field is required."]]) }
        let attempts = LoginAttempts(app: app, db: db, now: now)
        try await attempts.checkNotLocked(user.id!)
        guard let step = TOTP.matchingStep(code: code, secret: secret, at: now),
              try await attempts.consumeTOTPStep(step, userID: user.id!) else {
            _ = try await attempts.recordFailure(user.id!)
            throw APIError.validation([field: ["The code is not valid or was already used; wait for the next one."]])
        }
    }

    private func change(_ user: User, enabled: Bool, action: String, actor: AuditActor) async throws {
        let now = self.now
        try await db.transaction { db in
            user.totpEnabled = enabled
            try await user.save(on: db)
            try await AuditService(db: db, now: now).record(
                AuditEvent(action, target: ("user", user.id), companyID: user.$company.id, clientID: user.$client.id), by: actor)
        }
    }
}
