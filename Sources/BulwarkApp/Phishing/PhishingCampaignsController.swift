import Fluent
import Vapor

/// Seed 000: /api/v1/phishing/campaigns (+ /send, /complete, DELETE cancels).
struct PhishingCampaignsController: RouteCollection {
    func boot(routes: any RoutesBuilder) throws {
        let campaigns = routes.grouped("api", "v1", "phishing", "campaigns")
        campaigns.get(use: list)
        campaigns.post(use: create)
        campaigns.get(":id", use: show)
        campaigns.put(":id", use: update)
        campaigns.delete(":id", use: cancel)
        campaigns.post(":id", "send", use: send)
        campaigns.post(":id", "complete", use: complete)
    }

    private func client(_ req: Request) async throws -> Client {
        let scope = try req.scope()
        try scope.require(.managePhishing)
        return try await scope.actingClient()
    }

    @Sendable func list(req: Request) async throws -> Response {
        let page = try PageParams(from: req)
        var errors = FieldErrors()
        let status = errors.oneOf(req.queryText("status"), field: "status", allowed: PhishingCampaign.statuses)
        try errors.throwIfAny(from: .query)
        let client = try await client(req)
        let service = req.phishingCampaigns
        let query = service.campaigns(in: client)
        if let status { query.filter(\.$status == status) }
        let (items, meta) = try await query.sort(\.$createdAt, .descending).sort(\.$id).pageOfModels(page)
        let progress = try await service.progress(for: items.compactMap(\.id))
        return try req.envelope(items.map { PhishingCampaignResponse($0, progress: progress[$0.id!] ?? PhishingProgress()) }, pagination: meta)
    }

    @Sendable func create(req: Request) async throws -> Response {
        let client = try await client(req)
        let service = req.phishingCampaigns
        let campaign = try await service.create(try req.decodeBody(PhishingCampaignInput.self), in: client,
                                                templates: req.phishingTemplates, modules: try req.moduleService())
        return try req.envelope(try await service.response(campaign), status: .created)
    }

    @Sendable func show(req: Request) async throws -> Response {
        let client = try await client(req)
        let service = req.phishingCampaigns
        return try req.envelope(try await service.response(try await service.campaign(req.parameters.get("id"), in: client)))
    }

    @Sendable func update(req: Request) async throws -> Response {
        let client = try await client(req)
        let service = req.phishingCampaigns
        let campaign = try await service.campaign(req.parameters.get("id"), in: client)
        let updated = try await service.update(campaign, with: try req.decodeBody(PhishingCampaignInput.self), in: client,
                                               templates: req.phishingTemplates, modules: try req.moduleService())
        return try req.envelope(try await service.response(updated))
    }

    @Sendable func send(req: Request) async throws -> Response {
        let client = try await client(req)
        let service = req.phishingCampaigns
        let campaign = try await service.campaign(req.parameters.get("id"), in: client)
        try await service.launch(campaign, in: client)
        return try req.envelope(try await service.response(campaign))
    }

    @Sendable func complete(req: Request) async throws -> Response {
        let client = try await client(req)
        let service = req.phishingCampaigns
        let campaign = try await service.campaign(req.parameters.get("id"), in: client)
        try await service.complete(campaign, in: client)
        return try req.envelope(try await service.response(campaign))
    }

    @Sendable func cancel(req: Request) async throws -> Response {
        let client = try await client(req)
        let service = req.phishingCampaigns
        let campaign = try await service.campaign(req.parameters.get("id"), in: client)
        try await service.cancel(campaign, in: client)
        return try req.envelope(try await service.response(campaign))
    }
}
