import Fluent
import Vapor

/// On the first start with no user, creates the super admin (and a default company and client to act on).
enum FirstStart {
    static func ensureAdmin(_ app: Application) async throws {
        guard try await User.query(on: app.db).count() == 0 else { return }
        let settings = app.settings
        let email = settings.adminEmail ?? "admin@bulwark.local"
        let generated = settings.adminPassword == nil
        let password = settings.adminPassword ?? RandomToken.make(bytes: 15)
        _ = try await AdminAccounts.createSuperAdmin(app, email: email, password: password)
        if generated {
            // Printed once, to the console only: it is never stored in clear anywhere.
            print("""

            ==============================================================
             Bulwark created the first administrator:
               email:    \(email)
               password: \(password)
             Sign in at http://\(settings.hostname):\(settings.port)/login and change it.
            ==============================================================

            """)
        } else {
            app.logger.notice("Created the first administrator \(email) from BULWARK_ADMIN_EMAIL / BULWARK_ADMIN_PASSWORD.")
        }
    }
}

enum AdminAccounts {
    /// A super admin in the installation's default company (created with one client when missing).
    static func createSuperAdmin(_ app: Application, email: String, password: String) async throws -> User {
        var errors = FieldErrors()
        let email = errors.email(email, field: "email")
        let password = errors.password(password, field: "password")
        try errors.throwIfAny()
        if try await User.query(on: app.db).filter(\.$email == email!).first() != nil {
            throw APIError.conflict("A user with the email \(email!) already exists.")
        }
        let hash = try await app.passwordHasher.hash(password!)
        let companyName = app.settings.defaultCompanyName
        let now = app.clock.now()
        return try await app.db.transaction { db in
            let company: Company
            if let existing = try await Company.query(on: db).sort(\.$createdAt).first() {
                company = existing
            } else {
                company = Company(name: companyName, subscriptionStatus: "active", subscriptionPackage: "self_hosted")
                try await company.create(on: db)
            }
            let client: Client
            if let existing = try await Client.query(on: db).filter(\.$company.$id == company.id!).sort(\.$createdAt).first() {
                client = existing
            } else {
                client = Client(companyID: company.id!, name: "Default")
                try await client.create(on: db)
            }
            let user = User(companyID: company.id!, clientID: nil, firstName: "Bulwark", lastName: "Administrator",
                            email: email!, role: .superAdmin)
            user.$currentClient.id = client.id
            user.passwordHash = hash
            try await user.create(on: db)
            try await AuditService(db: db, now: now).record(
                AuditEvent("user.created", target: ("user", user.id), companyID: company.id,
                           details: ["email": .string(user.email), "role": .string("super_admin")]),
                by: .system)
            return user
        }
    }
}
