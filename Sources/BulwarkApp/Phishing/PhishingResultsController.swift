import Fluent
import SQLKit
import Vapor

/// Seed 000: campaign results (paged), export (streamed), one simulation's timeline, program statistics.
struct PhishingResultsController: RouteCollection {
    func boot(routes: any RoutesBuilder) throws {
        let phishing = routes.grouped("api", "v1", "phishing")
        phishing.get("campaigns", ":id", "results", use: results)
        phishing.get("campaigns", ":id", "export", use: export)
        phishing.get("simulations", ":id", use: simulation)
        phishing.get("stats", use: stats)
    }

    private func campaign(_ req: Request) async throws -> (PhishingCampaign, Client) {
        let scope = try req.scope()
        try scope.require(.managePhishing)
        let client = try await scope.actingClient()
        return (try await req.phishingCampaigns.campaign(req.parameters.get("id"), in: client), client)
    }

    /// The `status` and `department` filters of results and export, validated once.
    struct Filter: Sendable {
        static let statuses = Simulation.Stage.allCases.map(\.name) + ["reported", "error"]
        let status: String?
        let department: String?

        init(_ req: Request, errors: inout FieldErrors) {
            status = errors.oneOf(req.queryText("status"), field: "status", allowed: Self.statuses)
            department = errors.optional(req.queryText("department"), field: "department")
        }

        func query(campaignID: UUID, on db: any Database) -> QueryBuilder<Simulation> {
            let query = Simulation.query(on: db).filter(\.$campaign.$id == campaignID)
            switch status {
            case "reported": query.filter(\.$reportedAt != nil)
            case "error": query.filter(\.$sendStatus == "error")
            case .some(let name): query.filter(\.$stage == Simulation.Stage(name: name)!.rawValue)
            case nil: break
            }
            if let department { query.filter(\.$department == department) }
            return query
        }
    }

    @Sendable func results(req: Request) async throws -> Response {
        let page = try PageParams(from: req)
        let (campaign, _) = try await campaign(req)
        var errors = FieldErrors()
        let filter = Filter(req, errors: &errors)
        try errors.throwIfAny(from: .query)
        let keyset = Keyset<Simulation>(columns: [("last_name", { .text($0.lastName) }), ("first_name", { .text($0.firstName) }),
                                                  ("id", { .id($0.id!) })], descending: false)
        let cursor = try keyset.cursor(from: req)
        let query = filter.query(campaignID: campaign.id!, on: req.db)
        let (items, meta) = try await query.pageOfModels(page, keyset: keyset, cursor: cursor)
        return try req.envelope(items.map(SimulationResponse.init), pagination: meta)
    }

    @Sendable func export(req: Request) async throws -> Response {
        let (campaign, _) = try await campaign(req)
        var errors = FieldErrors()
        let format = ExportStream.Format.parse(req, errors: &errors)
        let filter = Filter(req, errors: &errors)
        try errors.throwIfAny(from: .query)
        let header = ["simulation_id", "user_id", "email", "name", "department", "template_id", "send_status", "status", "error",
                      "sent_at", "opened_at", "clicked_at", "submitted_at", "reported_at"]
        let db = req.db
        let campaignID = campaign.id!
        return ExportStream.response(
            app: req.application, format: format, filename: "phishing-results", header: header,
            csvLine: { (row: SimulationResponse, line: inout CSV.Writer) in
                line.id(row.id); line.id(row.userId); line.text(row.email); line.text(row.name); line.text(row.department)
                line.id(row.templateId); line.text(row.sendStatus); line.text(row.status); line.text(row.error)
                line.time(row.sentAt); line.time(row.openedAt); line.time(row.clickedAt); line.time(row.submittedAt)
                line.time(row.reportedAt)
            },
            keyStyle: req.keyStyle,
            nextPage: { after in
                let query = filter.query(campaignID: campaignID, on: db)
                if let after, let id = UUID(uuidString: after) { query.filter(\.$id > id) }
                let rows = try await query.sort(\.$id).limit(1000).all()
                return (rows.map(SimulationResponse.init), rows.last?.id?.uuidString)
            })
    }

    struct EventResponse: Encodable {
        let kind: String
        let occurredAt: Date
        @Nullable var ip: String?
        @Nullable var userAgent: String?
        let flagged: Bool
        @Nullable var flagReason: String?
        @Nullable var details: String?
    }

    struct SimulationDetail: Encodable {
        let simulation: SimulationResponse
        let timeline: [EventResponse]
    }

    @Sendable func simulation(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.managePhishing)
        let client = try await scope.actingClient()
        guard let id = req.parameters.get("id").flatMap(UUID.init(uuidString:)),
              let simulation = try await Simulation.query(on: req.db).filter(\.$id == id).filter(\.$clientID == client.id!).first() else {
            throw APIError.notFound("Simulation")
        }
        let events = try await PhishingEvent.query(on: req.db).filter(\.$simulationID == id).sort(\.$occurredAt).limit(1000).all()
        return try req.envelope(SimulationDetail(simulation: SimulationResponse(simulation), timeline: events.map {
            EventResponse(kind: $0.kind, occurredAt: $0.occurredAt, ip: $0.ip, userAgent: $0.userAgent, flagged: $0.isBot,
                          flagReason: $0.botReason, details: $0.details)
        }))
    }

    @Sendable func stats(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.managePhishing)
        var errors = FieldErrors()
        let from = errors.date(req.queryText("from"), field: "from")
        let to = errors.date(req.queryText("to"), field: "to")
        try errors.throwIfAny(from: .query)
        let client = try await scope.actingClient()
        return try req.envelope(try await PhishingStatsService(db: req.db).stats(clientID: client.id!, from: from, to: to))
    }
}
