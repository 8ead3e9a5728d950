import Fluent
import Vapor

/// Seed 000: /api/v1/campaigns.
struct CampaignsController: RouteCollection {
    func boot(routes: any RoutesBuilder) throws {
        let campaigns = routes.grouped("api", "v1", "campaigns")
        campaigns.get(use: list)
        campaigns.post(use: create)
        campaigns.get(":id", use: show)
        campaigns.put(":id", use: update)
        campaigns.delete(":id", use: delete)
    }

    @Sendable func list(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageTraining)
        let page = try PageParams(from: req)
        var errors = FieldErrors()
        let status = errors.oneOf(req.queryText("status"), field: "status", allowed: TrainingCampaign.statuses)
        let search = errors.optional(req.queryText("search"), field: "search")
        try errors.throwIfAny(from: .query)
        let client = try await scope.actingClient()
        return try req.envelope(page: try await req.campaignService.list(in: client, status: status, search: search, page: page))
    }

    @Sendable func create(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageTraining)
        let input = try req.decodeBody(CampaignInput.self)
        let client = try await scope.actingClient()
        let service = req.campaignService
        let campaign = try await service.create(input, in: client, modules: try req.moduleService())
        return try req.envelope(try await service.response(campaign), status: .created)
    }

    @Sendable func show(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageTraining)
        let client = try await scope.actingClient()
        let service = req.campaignService
        return try req.envelope(try await service.response(try await service.campaign(req.parameters.get("id"), in: client)))
    }

    @Sendable func update(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageTraining)
        let client = try await scope.actingClient()
        let service = req.campaignService
        let campaign = try await service.campaign(req.parameters.get("id"), in: client)
        let input = try req.decodeBody(CampaignInput.self)
        let updated = try await service.update(campaign, with: input, in: client, modules: try req.moduleService())
        return try req.envelope(try await service.response(updated))
    }

    struct Deleted: Encodable { let id: UUID; let deleted = true }

    @Sendable func delete(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageTraining)
        let client = try await scope.actingClient()
        let service = req.campaignService
        let campaign = try await service.campaign(req.parameters.get("id"), in: client)
        let id = campaign.id!
        try await service.delete(campaign, in: client)
        return try req.envelope(Deleted(id: id))
    }
}
