import Fluent
import Vapor

/// /api/v1/phishing/sending-profiles: the SMTP servers simulations go out through, and a test send.
struct SendingProfilesController: RouteCollection {
    struct Input: Decodable {
        var name: String?
        var host: String?
        var port: Int?
        var security: String?
        var username: String?
        var password: String?
        var envelopeFrom: String?
        var headers: [String: String]?
        var throttlePerMinute: Int?
    }

    struct ProfileResponse: Encodable {
        let id: UUID
        let name: String
        let host: String
        let port: Int
        let security: String
        @Nullable var username: String?
        /// Never the password itself.
        let passwordSet: Bool
        let envelopeFrom: String
        let headers: [String: String]
        let throttlePerMinute: Int
        /// "active", or "paused" while the server could not be used; sending resumes by itself after `paused_until`.
        let status: String
        @Nullable var pauseReason: String?
        @Nullable var pausedUntil: Date?
        let createdAt: Date?

        init(_ profile: SendingProfile) {
            id = profile.id!
            name = profile.name
            host = profile.host
            port = profile.port
            security = profile.security
            username = profile.username
            passwordSet = profile.passwordSealed != nil
            envelopeFrom = profile.envelopeFrom
            headers = profile.headers
            throttlePerMinute = profile.throttlePerMinute
            status = profile.pausedUntil == nil ? "active" : "paused"
            pauseReason = profile.pauseReason
            pausedUntil = profile.pausedUntil
            createdAt = profile.createdAt
        }
    }

    func boot(routes: any RoutesBuilder) throws {
        let profiles = routes.grouped("api", "v1", "phishing", "sending-profiles")
        profiles.get(use: list)
        profiles.post(use: create)
        profiles.get(":id", use: show)
        profiles.put(":id", use: update)
        profiles.delete(":id", use: delete)
        profiles.post(":id", "test", use: test)
    }

    private func client(_ req: Request) async throws -> Client {
        let scope = try req.scope()
        try scope.require(.managePhishing)
        return try await scope.actingClient()
    }

    private func profile(_ req: Request, client: Client) async throws -> SendingProfile {
        guard let id = req.parameters.get("id").flatMap(UUID.init(uuidString:)),
              let profile = try await SendingProfile.query(on: req.db).filter(\.$id == id).filter(\.$clientID == client.id!).first() else {
            throw APIError.notFound("Sending profile")
        }
        return profile
    }

    @Sendable func list(req: Request) async throws -> Response {
        let page = try PageParams(from: req)
        let client = try await client(req)
        let (items, meta) = try await SendingProfile.query(on: req.db).filter(\.$clientID == client.id!).sort(\.$name).sort(\.$id).pageOfModels(page)
        return try req.envelope(items.map(ProfileResponse.init), pagination: meta)
    }

    @Sendable func show(req: Request) async throws -> Response {
        let client = try await client(req)
        return try req.envelope(ProfileResponse(try await profile(req, client: client)))
    }

    @Sendable func create(req: Request) async throws -> Response {
        let client = try await client(req)
        let profile = SendingProfile()
        profile.failureCount = 0
        profile.clientID = client.id!
        try apply(try req.decodeBody(Input.self), to: profile, creating: true, app: req.application)
        try await save(profile, action: "sending_profile.created", req: req, client: client)
        return try req.envelope(ProfileResponse(profile), status: .created)
    }

    @Sendable func update(req: Request) async throws -> Response {
        let client = try await client(req)
        let profile = try await profile(req, client: client)
        try apply(try req.decodeBody(Input.self), to: profile, creating: false, app: req.application)
        // A changed profile is tried again at once: the change may well be the fix.
        profile.pausedUntil = nil
        profile.pauseReason = nil
        profile.failureCount = 0
        try await save(profile, action: "sending_profile.updated", req: req, client: client)
        return try req.envelope(ProfileResponse(profile))
    }

    @Sendable func delete(req: Request) async throws -> Response {
        let client = try await client(req)
        let profile = try await profile(req, client: client)
        let id = profile.id!
        if let busy = try await PhishingCampaign.query(on: req.db).filter(\.$sendingProfileID == id)
            .filter(\.$status ~~ ["scheduled", "sending"]).first() {
            throw APIError.conflict("The campaign \"\(busy.name)\" is sending through this profile; complete or cancel it first.")
        }
        let actor = req.auditActor
        let now = req.now
        try await req.db.transaction { db in
            try await profile.delete(on: db)
            try await AuditService(db: db, now: now).record(
                AuditEvent("sending_profile.deleted", target: ("sending_profile", id), companyID: client.$company.id, clientID: client.id), by: actor)
        }
        return try req.envelope(["id": id.uuidString, "status": "deleted"])
    }

    /// Sends one plain test message through the profile and says what failed, in Bulwark's words: the stage
    /// (target refused, connect, timeout, TLS, authentication, sender, recipient, message) and the reply codes, never the
    /// remote server's text.
    @Sendable func test(req: Request) async throws -> Response {
        struct TestInput: Decodable { var to: String? }
        struct TestResult: Encodable {
            let delivered: Bool
            let outcome: String
            @Nullable var stage: String?
            @Nullable var detail: String?
        }
        let client = try await client(req)
        let profile = try await profile(req, client: client)
        var errors = FieldErrors()
        let to = errors.email(try req.decodeBody(TestInput.self).to, field: "to")
        try errors.throwIfAny()
        let message = MailMessage(
            from: MailAddress(email: profile.envelopeFrom, name: "Bulwark test"), to: [MailAddress(email: to!, name: nil)],
            subject: "Bulwark sending profile test", text: "This message confirms that the sending profile \"\(profile.name)\" works.",
            html: nil, headers: profile.headers, envelopeFrom: profile.envelopeFrom)
        let failure: SMTPError?
        if let override = req.application.phishingMailerOverride {
            switch await override.send(message) {
            case .sent: failure = nil
            case let .temporaryFailure(text): failure = SMTPError(.message, code: 451, note: text)
            case let .permanentFailure(text): failure = SMTPError(.message, code: 550, note: text)
            }
        } else {
            failure = await (try SendingProfileMailer.smtp(for: profile, app: req.application)).probe(message)
        }
        guard let failure else { return try req.envelope(TestResult(delivered: true, outcome: "sent", stage: nil, detail: nil)) }
        return try req.envelope(TestResult(delivered: false, outcome: failure.isPermanent ? "permanent_failure" : "temporary_failure",
                                           stage: failure.wireName, detail: failure.description))
    }

    private func save(_ profile: SendingProfile, action: String, req: Request, client: Client) async throws {
        let actor = req.auditActor
        let now = req.now
        try await req.db.transaction { db in
            try await profile.save(on: db)
            try await AuditService(db: db, now: now).record(
                AuditEvent(action, target: ("sending_profile", profile.id), companyID: client.$company.id, clientID: client.id,
                           details: ["host": .string(profile.host)]), by: actor)
        }
    }

    private func apply(_ input: Input, to profile: SendingProfile, creating: Bool, app: Application) throws {
        var errors = FieldErrors()
        let name = creating ? errors.required(input.name, field: "name", maxLength: 200) : errors.optional(input.name, field: "name", maxLength: 200)
        let host = creating ? errors.required(input.host, field: "host") : errors.optional(input.host, field: "host")
        let port = errors.range(input.port, field: "port", min: 1, max: 65_535)
        let security = errors.oneOf(input.security, field: "security", allowed: SMTPSettings.Security.allCases.map(\.rawValue))
        let envelope = errors.email(input.envelopeFrom, field: "envelope_from", required: creating)
        let throttle = errors.range(input.throttlePerMinute, field: "throttle_per_minute", min: 1, max: 1_000_000)
        if let headers = input.headers, headers.keys.contains(where: { !$0.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") } }) {
            errors.add("headers", "Header names may contain letters, digits and '-' only.")
        }
        try errors.throwIfAny()
        if let name { profile.name = name }
        if let host { profile.host = host }
        if let port { profile.port = port } else if creating { profile.port = 587 }
        if let security { profile.security = security } else if creating { profile.security = "starttls" }
        if let username = input.username { profile.username = username.isEmpty ? nil : username }
        if let password = input.password { profile.passwordSealed = password.isEmpty ? nil : try app.secretBox.seal(password) }
        if let envelope { profile.envelopeFrom = envelope }
        if let headers = input.headers { profile.headers = headers } else if creating { profile.headers = [:] }
        if let throttle { profile.throttlePerMinute = throttle } else if creating { profile.throttlePerMinute = 60 }
    }
}

enum SendingProfileMailer {
    /// The transport a profile describes (tests and benchmarks may replace every profile's transport).
    static func mailer(for profile: SendingProfile, app: Application) throws -> any Mailer {
        if let override = app.phishingMailerOverride { return override }
        return try smtp(for: profile, app: app)
    }

    /// SMTP to the profile's server, through the outbound guard: the tenant chose the host, so every connection goes
    /// only where the operator's policy allows.
    static func smtp(for profile: SendingProfile, app: Application) throws -> SMTPMailer {
        let password = try profile.passwordSealed.map { try app.secretBox.open($0) }
        var settings = SMTPSettings(host: profile.host, port: profile.port,
                                    security: SMTPSettings.Security(rawValue: profile.security) ?? .starttls,
                                    username: profile.username, password: password)
        settings.trustRoots = app.smtpTrustRoots
        return SMTPMailer(settings: settings, group: app.eventLoopGroup, logger: app.logger, outboundGuard: app.outboundGuard)
    }
}
