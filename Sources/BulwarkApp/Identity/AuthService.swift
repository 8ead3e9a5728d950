import Fluent
import Vapor

/// Sign-in, sign-out and self-service registration.
struct AuthService: Sendable {
    let app: Application
    let db: any Database
    let now: Date

    struct SignedIn: Sendable {
        let user: User
        let token: String
        let session: AuthSession
    }

    /// Checks the password (and TOTP code when enrolled), with lockout after repeated failures.
    /// `totpField` names the code field in this route family's key style, for the error details.
    func login(email: String, password: String, totpCode: String?, totpField: String, actor: AuditActor) async throws -> SignedIn {
        let user = try await verifyPassword(email: email, password: password, actor: actor)
        if user.totpEnabled {
            guard let totpCode, !totpCode.isEmpty else {
                throw APIError.unauthorized("A two-factor code is required.", details: [totpField: ["A two-factor code is required."]])
            }
            try await verifySecondFactor(user, code: totpCode, field: totpField, actor: actor)
        }
        return try await startSession(for: user, actor: actor)
    }

    /// First step of sign-in: the password, under the lockout rule. Every path runs exactly one bcrypt check, so unknown
    /// emails, people without a password and locked accounts answer in the time a wrong password takes.
    func verifyPassword(email: String, password: String, actor: AuditActor) async throws -> User {
        let email = email.lowercased()
        let attempts = LoginAttempts(app: app, db: db, now: now)
        try await attempts.spendAccountBudget(email: email)
        let user = try await User.query(on: db).filter(\.$email == email).first()
        let hash: String
        if let real = user?.passwordHash { hash = real } else { hash = try await attempts.decoyHash() }
        let matches = try await app.passwordHasher.verify(password, hash: hash)
        guard let user else { throw APIError.unauthorized("Invalid email or password.") }
        try await attempts.checkNotLocked(user.id!)
        guard matches, user.passwordHash != nil, user.isActive else {
            try await recordFailure(user, reason: "password", actor: actor)
            throw APIError.unauthorized("Invalid email or password.")
        }
        return user
    }

    /// Second step: the TOTP code of an enrolled user, each time step accepted once.
    func verifySecondFactor(_ user: User, code: String, field: String, actor: AuditActor) async throws {
        let attempts = LoginAttempts(app: app, db: db, now: now)
        try await attempts.checkNotLocked(user.id!)
        guard let sealed = user.totpSecret, let secret = try? app.secretBox.open(sealed),
              let step = TOTP.matchingStep(code: code, secret: secret, at: now),
              try await attempts.consumeTOTPStep(step, userID: user.id!) else {
            try await recordFailure(user, reason: "totp", actor: actor)
            throw APIError.unauthorized("The two-factor code is not valid.", details: [field: ["The two-factor code is not valid."]])
        }
    }

    /// Records the sign-in and issues the token that also serves as the session cookie.
    func startSession(for user: User, actor: AuditActor) async throws -> SignedIn {
        let now = self.now
        let lifetime = app.settings.tokenLifetime
        let keys = app.bulwarkKeys
        return try await db.transaction { db in
            user.failedLogins = 0
            user.lockedUntil = nil
            user.lastLoginAt = now
            try await user.save(on: db)
            let issued = try await TokenService(keys: keys, db: db, now: now, lifetime: lifetime)
                .issue(for: user, ip: actor.ip, userAgent: actor.userAgent)
            var signedInActor = actor
            signedInActor.userID = user.id
            signedInActor.email = user.email
            try await AuditService(db: db, now: now).record(
                AuditEvent("auth.login", target: ("user", user.id), companyID: user.$company.id, clientID: user.$client.id),
                by: signedInActor)
            return SignedIn(user: user, token: issued.token, session: issued.session)
        }
    }

    private func recordFailure(_ user: User, reason: String, actor: AuditActor) async throws {
        let now = self.now
        let app = self.app
        try await db.transaction { db in
            var details = try await LoginAttempts(app: app, db: db, now: now).recordFailure(user.id!)
            details["reason"] = .string(reason)
            try await AuditService(db: db, now: now).record(
                AuditEvent("auth.login_failed", target: ("user", user.id), companyID: user.$company.id,
                           clientID: user.$client.id, details: details),
                by: actor)
        }
    }

    /// Revokes the credential the caller presented: a Bulwark session (token or cookie), or an external issuer's token,
    /// which is then refused until it expires. API keys are revoked through their own route.
    func logout(_ principal: Principal, actor: AuditActor) async throws {
        let now = self.now
        switch principal.credential {
        case .apiKey:
            throw APIError.badRequest("API keys are not signed in; revoke them with DELETE /api/v1/api-keys/{id}.")
        case let .session(sessionID):
            try await db.transaction { db in
                try await AuthSession.query(on: db).filter(\.$id == sessionID).set(\.$revokedAt, to: now).update()
                try await recordLogout(principal, db: db, actor: actor)
            }
            app.credentialCache.invalidateAll()
        case let .external(_, _, tokenHash, expiresAt):
            try await db.transaction { db in
                try await RevokedTokens.revoke(tokenHash: tokenHash, until: expiresAt, db: db, now: now)
                try await recordLogout(principal, db: db, actor: actor)
            }
        }
    }

    private func recordLogout(_ principal: Principal, db: any Database, actor: AuditActor) async throws {
        try await AuditService(db: db, now: now).record(
            AuditEvent("auth.logout", target: ("user", principal.userID), companyID: principal.companyID,
                       clientID: principal.user.$client.id),
            by: actor)
    }

    struct Registration: Sendable {
        var email: String
        var password: String
        var firstName: String
        var lastName: String
        var companyName: String?
    }

    /// Self-service sign-up: a new company with one client, and the person as the company's administrator.
    func register(_ registration: Registration, actor: AuditActor) async throws -> SignedIn {
        if try await User.query(on: db).filter(\.$email == registration.email).first() != nil {
            throw APIError.conflict("An account with this email already exists.")
        }
        let hash = try await app.passwordHasher.hash(registration.password)
        let now = self.now
        let user = try await db.transaction { db in
            let organisation = registration.companyName ?? "\(registration.firstName) \(registration.lastName)'s organisation"
            let company = Company(name: organisation, email: registration.email)
            try await company.create(on: db)
            let client = Client(companyID: company.id!, name: organisation)
            try await client.create(on: db)
            // The founder administers the whole company (they may add clients) and is also a member of its first client,
            // so campaigns for "everyone" include them.
            let user = User(companyID: company.id!, clientID: client.id!, firstName: registration.firstName,
                            lastName: registration.lastName, email: registration.email, role: .mspAdmin)
            user.passwordHash = hash
            try await user.create(on: db)
            var registeredActor = actor
            registeredActor.userID = user.id
            registeredActor.email = user.email
            try await AuditService(db: db, now: now).record(
                AuditEvent("auth.registered", target: ("user", user.id), companyID: company.id, clientID: client.id),
                by: registeredActor)
            return user
        }
        return try await startSession(for: user, actor: actor)
    }
}

extension Request {
    var authService: AuthService { AuthService(app: application, db: db, now: now) }
}

extension AuthService {
    /// Changes a password after checking the current one; other sessions of the user are signed out.
    func changePassword(_ user: User, current: String?, new: String?, confirmation: String?, keepSession: UUID?,
                        actor: AuditActor) async throws {
        var errors = FieldErrors()
        if current?.isEmpty ?? true { errors.add("current_password", "The current_password field is required.") }
        let newPassword = errors.password(new, field: "new_password")
        if let newPassword, newPassword != confirmation {
            errors.add("new_password_confirmation", "The confirmation does not match the new password.")
        }
        try errors.throwIfAny()
        guard let hash = user.passwordHash, try await app.passwordHasher.verify(current!, hash: hash) else {
            throw APIError.validation(["current_password": ["The current password is not correct."]])
        }
        let newHash = try await app.passwordHasher.hash(newPassword!)
        let now = self.now
        try await db.transaction { db in
            user.passwordHash = newHash
            try await user.save(on: db)
            let others = AuthSession.query(on: db).filter(\.$user.$id == user.id!).filter(\.$revokedAt == nil)
            if let keepSession { others.filter(\.$id != keepSession) }
            try await others.set(\.$revokedAt, to: now).update()
            try await AuditService(db: db, now: now).record(
                AuditEvent("auth.password_changed", target: ("user", user.id), companyID: user.$company.id,
                           clientID: user.$client.id), by: actor)
        }
        app.credentialCache.invalidateAll()
    }
}
