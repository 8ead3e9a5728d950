import Fluent
import Vapor

/// Makes the process exit non-zero after the command has printed why.
struct CommandFailed: Error, CustomStringConvertible {
    var description: String { "command failed" }
}

/// `bulwark create-admin --email a@b.c --password secret123`
struct CreateAdminCommand: AsyncCommand {
    struct Signature: CommandSignature {
        @Option(name: "email", help: "Email of the new super admin") var email: String?
        @Option(name: "password", help: "Password (at least 8 characters)") var password: String?
    }

    var help: String { "Creates a super administrator." }

    func run(using context: CommandContext, signature: Signature) async throws {
        guard let email = signature.email, let password = signature.password else {
            context.console.error("Both --email and --password are required.")
            throw CommandFailed()
        }
        do {
            let user = try await AdminAccounts.createSuperAdmin(context.application, email: email, password: password)
            context.console.success("Created super admin \(user.email) (\(user.id!)).")
        } catch let error as APIError {
            let reasons = error.details?.sorted { $0.key < $1.key }.flatMap { field, messages in messages.map { "\(field): \($0)" } }
            context.console.error(reasons?.joined(separator: "\n") ?? error.message)
            throw CommandFailed()
        }
    }
}

/// `bulwark create-api-key --email a@b.c --name "CI"`: prints the key once.
struct CreateAPIKeyCommand: AsyncCommand {
    struct Signature: CommandSignature {
        @Option(name: "email", help: "Owner of the key; the key acts with their role") var email: String?
        @Option(name: "name", help: "A name to recognise the key by") var name: String?
    }

    var help: String { "Creates an API key for a user and prints it once." }

    func run(using context: CommandContext, signature: Signature) async throws {
        let app = context.application
        guard let email = signature.email?.lowercased(), let name = signature.name, !name.isEmpty else {
            context.console.error("Both --email and --name are required.")
            throw CommandFailed()
        }
        guard let user = try await User.query(on: app.db).filter(\.$email == email).first() else {
            context.console.error("No user with the email \(email).")
            throw CommandFailed()
        }
        let clientID = user.role.isCompanyWide ? nil : user.$client.id
        let created = try await APIKeyService(db: app.db, now: app.clock.now()).create(
            name: name, role: user.role, owner: user, companyID: user.$company.id, clientID: clientID, actor: .system)
        context.console.print(created.secret)
        context.console.info("Shown once; store it now. Revoke with DELETE /api/v1/api-keys/\(created.key.id!).")
    }
}

/// `bulwark audit-verify`: walks every audit chain and reports the first broken link (exit 1).
struct AuditVerifyCommand: AsyncCommand {
    struct Signature: CommandSignature {}

    var help: String { "Verifies the audit log hash chains." }

    func run(using context: CommandContext, signature: Signature) async throws {
        let app = context.application
        let result = try await AuditVerifier(db: app.db).verify()
        if let broken = result.broken {
            context.console.error("Audit chain broken: \(broken)")
            throw CommandFailed()
        }
        context.console.success("Audit log intact: \(result.checked) entries verified.")
    }
}

/// `bulwark run-jobs`: runs every due job (and each recurring job's current slot) once, then exits. For servers started
/// with BULWARK_DISABLE_WORKER (from cron), and for measuring the scans. On SQLite it refuses while another process
/// (a server with its worker) owns the queue.
struct RunJobsCommand: AsyncCommand {
    struct Signature: CommandSignature {}

    var help: String { "Runs all due background jobs once." }

    func run(using context: CommandContext, signature: Signature) async throws {
        let app = context.application
        if case let .sqliteFile(path) = app.settings.database {
            guard let ownership = try QueueOwnership.acquire(forDatabaseAt: path) else {
                context.console.error("Another process (a server with its job worker, or run-jobs) runs the jobs of \(path).")
                throw CommandFailed()
            }
            app.queueOwnership = ownership
            try await app.jobWorker.handBackAbandoned(app: app)
        }
        let started = Date()
        let ran = try await app.jobWorker.runDue(app: app)
        app.queueOwnership = nil
        context.console.success("Ran \(ran) job(s) in \(String(format: "%.2f", Date().timeIntervalSince(started))) s.")
    }
}
