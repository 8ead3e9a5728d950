import Fluent
import Vapor

/// Seed 000: /api/v1/escalation/settings, /history, /acknowledge/{id}.
struct EscalationsController: RouteCollection {
    struct SettingsBody: Codable {
        var enabled: Bool?
        var learnerAfterDays: Int?
        var managerAfterDays: Int?
        var adminAfterDays: Int?
        var quietHoursStart: Int?
        var quietHoursEnd: Int?
        var timezone: String?
    }

    struct EscalationResponse: Encodable {
        let id: UUID
        let enrollmentId: UUID
        let userId: UUID
        let step: String
        let recipientEmail: String
        let status: String
        @Nullable var error: String?
        let daysOverdue: Int
        let sentAt: Date
        @Nullable var acknowledgedAt: Date?
        @Nullable var acknowledgedBy: UUID?

        init(_ escalation: Escalation) {
            id = escalation.id!
            enrollmentId = escalation.enrollmentID
            userId = escalation.userID
            step = escalation.step
            recipientEmail = escalation.recipientEmail
            status = escalation.status
            error = escalation.error
            daysOverdue = escalation.daysOverdue
            sentAt = escalation.sentAt
            acknowledgedAt = escalation.acknowledgedAt
            acknowledgedBy = escalation.acknowledgedBy
        }
    }

    func boot(routes: any RoutesBuilder) throws {
        let escalation = routes.grouped("api", "v1", "escalation")
        escalation.get("settings", use: showSettings)
        escalation.put("settings", use: updateSettings)
        escalation.get("history", use: history)
        escalation.post("acknowledge", ":id", use: acknowledge)
    }

    private func body(_ settings: EscalationSettings) -> SettingsBody {
        SettingsBody(enabled: settings.enabled, learnerAfterDays: settings.learnerAfterDays, managerAfterDays: settings.managerAfterDays,
                     adminAfterDays: settings.adminAfterDays, quietHoursStart: settings.quietStartHour,
                     quietHoursEnd: settings.quietEndHour, timezone: settings.timezone)
    }

    @Sendable func showSettings(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageTraining)
        let client = try await scope.actingClient()
        return try req.envelope(body(try await req.application.escalationService().settings(for: client.id!)))
    }

    @Sendable func updateSettings(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageTraining)
        let input = try req.decodeBody(SettingsBody.self)
        let client = try await scope.actingClient()
        let settings = try await req.application.escalationService().settings(for: client.id!)
        var errors = FieldErrors()
        let learner = errors.range(input.learnerAfterDays, field: "learner_after_days", min: 0, max: 365) ?? settings.learnerAfterDays
        let manager = errors.range(input.managerAfterDays, field: "manager_after_days", min: 0, max: 365) ?? settings.managerAfterDays
        let admin = errors.range(input.adminAfterDays, field: "admin_after_days", min: 0, max: 365) ?? settings.adminAfterDays
        if errors.isEmpty && !(learner <= manager && manager <= admin) {
            errors.add("manager_after_days", "Steps must escalate in order: learner ≤ manager ≤ admin days.")
        }
        let quietStart = errors.range(input.quietHoursStart, field: "quiet_hours_start", min: 0, max: 23)
        let quietEnd = errors.range(input.quietHoursEnd, field: "quiet_hours_end", min: 0, max: 23)
        if let timezone = input.timezone, TimeZone(identifier: timezone) == nil {
            errors.add("timezone", "The timezone must be an IANA name such as Europe/Paris.")
        }
        try errors.throwIfAny()
        settings.enabled = input.enabled ?? settings.enabled
        settings.learnerAfterDays = learner
        settings.managerAfterDays = manager
        settings.adminAfterDays = admin
        settings.quietStartHour = quietStart ?? settings.quietStartHour
        settings.quietEndHour = quietEnd ?? settings.quietEndHour
        settings.timezone = input.timezone ?? settings.timezone
        let actor = req.auditActor
        let now = req.now
        try await req.db.transaction { db in
            try await settings.save(on: db)
            try await AuditService(db: db, now: now).record(
                AuditEvent("escalation.settings_updated", target: ("client", client.id), companyID: client.$company.id,
                           clientID: client.id, details: ["enabled": .bool(settings.enabled)]), by: actor)
        }
        return try req.envelope(body(settings))
    }

    @Sendable func history(req: Request) async throws -> Response {
        let scope = try req.scope()
        let principal = scope.principal
        guard principal.has(.manageTraining) || principal.has(.viewTeam) else { throw APIError.forbidden() }
        let page = try PageParams(from: req)
        var errors = FieldErrors()
        let step = errors.oneOf(req.queryText("step"), field: "step", allowed: Escalation.steps)
        let userID = errors.uuid(req.queryText("user_id"), field: "user_id")
        let acknowledged = errors.oneOf(req.queryText("acknowledged"), field: "acknowledged", allowed: ["true", "false"])
        try errors.throwIfAny(from: .query)
        let client = try await scope.actingClient()
        let query = Escalation.query(on: req.db).filter(\.$clientID == client.id!).filter(\.$status != "pending")
        if !principal.has(.manageTraining) {
            // Managers see the escalations about their own reports.
            let reports = try await User.query(on: req.db).filter(\.$manager.$id == principal.userID).all().compactMap(\.id)
            query.filter(\.$userID ~~ reports)
        }
        if let step { query.filter(\.$step == step) }
        if let userID { query.filter(\.$userID == userID) }
        if acknowledged == "true" { query.filter(\.$acknowledgedAt != nil) }
        if acknowledged == "false" { query.filter(\.$acknowledgedAt == nil) }
        let (items, meta) = try await query.sort(\.$sentAt, .descending).sort(\.$id).pageOfModels(page)
        return try req.envelope(items.map(EscalationResponse.init), pagination: meta)
    }

    @Sendable func acknowledge(req: Request) async throws -> Response {
        let scope = try req.scope()
        let principal = scope.principal
        let client = try await scope.actingClient()
        guard let id = req.parameters.get("id").flatMap(UUID.init(uuidString:)),
              let escalation = try await Escalation.query(on: req.db).filter(\.$id == id).filter(\.$clientID == client.id!).filter(\.$status != "pending").first() else {
            throw APIError.notFound("Escalation")
        }
        let subject = try await User.find(escalation.userID, on: req.db)
        let isTheirManager = subject?.$manager.id == principal.userID
        guard principal.has(.manageTraining) || isTheirManager || escalation.userID == principal.userID else {
            throw APIError.notFound("Escalation")
        }
        if escalation.acknowledgedAt == nil {
            escalation.acknowledgedAt = req.now
            escalation.acknowledgedBy = principal.userID
            let actor = req.auditActor
            let now = req.now
            try await req.db.transaction { db in
                try await escalation.save(on: db)
                try await AuditService(db: db, now: now).record(
                    AuditEvent("escalation.acknowledged", target: ("escalation", escalation.id), companyID: client.$company.id,
                               clientID: client.id), by: actor)
            }
        }
        return try req.envelope(EscalationResponse(escalation))
    }
}
