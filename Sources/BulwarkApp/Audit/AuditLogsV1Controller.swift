import Fluent
import Vapor

/// Seed 000: /api/v1/audit-logs, query the acting client's audit trail and add custom entries.
struct AuditLogsV1Controller: RouteCollection {
    struct EntryResponse: Encodable {
        let id: UUID
        let action: String
        @Nullable var actorId: UUID?
        @Nullable var actorEmail: String?
        @Nullable var targetType: String?
        @Nullable var targetId: String?
        @Nullable var companyId: UUID?
        @Nullable var clientId: UUID?
        @Nullable var ipAddress: String?
        @Nullable var userAgent: String?
        @Nullable var details: [String: JSONValue]?
        let sequence: Int
        let hash: String
        let previousHash: String
        let createdAt: Date

        init(_ entry: AuditEntry) {
            id = entry.id!
            action = entry.action
            actorId = entry.actorID
            actorEmail = entry.actorEmail
            targetType = entry.targetType
            targetId = entry.targetID
            companyId = entry.companyID
            clientId = entry.clientID
            ipAddress = entry.ip
            userAgent = entry.userAgent
            details = JSONValue.decodeObject(entry.details)
            sequence = entry.seq
            hash = entry.hash
            previousHash = entry.prevHash
            createdAt = entry.createdAt
        }
    }

    struct Input: Decodable {
        var action: String?
        var targetType: String?
        var targetId: String?
        var details: [String: JSONValue]?
    }

    func boot(routes: any RoutesBuilder) throws {
        let logs = routes.grouped("api", "v1", "audit-logs")
        logs.get(use: list)
        logs.post(use: create)
    }

    @Sendable func list(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.viewAuditLogs)
        let page = try PageParams(from: req)
        var errors = FieldErrors()
        let filters = AuditService.Filters(
            actor: errors.optional(req.queryText("actor"), field: "actor"),
            action: errors.optional(req.queryText("action"), field: "action"),
            target: errors.optional(req.queryText("target"), field: "target"),
            from: errors.date(req.queryText("from"), field: "from"),
            to: errors.date(req.queryText("to"), field: "to"))
        if let from = filters.from, let to = filters.to, from > to { errors.add("to", "The to must be after from.") }
        try errors.throwIfAny(from: .query)
        let client = try await scope.actingClient()
        let (entries, meta) = try await req.audit.list(clientID: client.id!, filters: filters, page: page)
        return try req.envelope(entries.map(EntryResponse.init), pagination: meta)
    }

    @Sendable func create(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.writeAuditLogs)
        let input = try req.decodeBody(Input.self)
        var errors = FieldErrors()
        let action = errors.required(input.action, field: "action", maxLength: 100)
        if let action, action.range(of: "^[a-z0-9_]+(\\.[a-z0-9_]+)*$", options: .regularExpression) == nil {
            errors.add("action", "The action must be dotted lowercase words, e.g. training.reviewed.")
        }
        let targetType = errors.optional(input.targetType, field: "target_type", maxLength: 100)
        let targetID = errors.optional(input.targetId, field: "target_id", maxLength: 100)
        if let details = input.details, JSONValue.canonical(details).utf8.count > 16_384 {
            errors.add("details", "The details may not be larger than 16 KB.")
        }
        try errors.throwIfAny()
        let client = try await scope.actingClient()
        var event = AuditEvent(AuditNamespace.custom(action!), companyID: client.$company.id, clientID: client.id,
                               details: input.details)
        event.targetType = targetType
        event.targetID = targetID
        let actor = req.auditActor
        let now = req.now
        let finalEvent = event
        let entry = try await req.db.transaction { db in
            try await AuditService(db: db, now: now).record(finalEvent, by: actor)
        }
        return try req.envelope(EntryResponse(entry), status: .created)
    }
}
