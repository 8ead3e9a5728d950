import Fluent
import Vapor

/// Phishing pages: campaigns with live progress and a launch form, results with timelines, template library with
/// sandboxed previews and a simple editor, program statistics as SVG.
struct DashboardPhishingController: RouteCollection {
    struct Choice: Encodable { let id: String; let name: String }

    struct CampaignRow: Encodable {
        let href: String
        let name: String
        let status: String
        let progress: PhishingProgress
        let sentPercent: Int
    }

    struct OverviewPage: Encodable {
        let layout: Layout
        let campaigns: [CampaignRow]
        let templates: [Choice]
        let profiles: [Choice]
        let statsChart: String
        let totals: PhishingStatsService.Rates
        let errors: [FormError]
    }

    struct ResultRow: Encodable {
        let href: String
        let name: String
        let email: String
        let department: String?
        let status: String
        let reported: Bool
        let sendStatus: String
    }

    struct CampaignPage: Encodable {
        let layout: Layout
        let campaign: PhishingCampaignResponse
        let chart: String
        let results: [ResultRow]
        let exportPath: String
    }

    struct TimelinePage: Encodable {
        let layout: Layout
        let simulation: SimulationResponse
        let events: [PhishingResultsController.EventResponse]
    }

    struct TemplateRow: Encodable { let name: String; let category: String; let difficulty: String; let builtin: Bool; let previewPath: String }

    struct TemplatesPage: Encodable {
        let layout: Layout
        let templates: [TemplateRow]
        let errors: [FormError]
    }

    func boot(routes: any RoutesBuilder) throws {
        let pages = routes.grouped(DashboardGuard()).grouped("phishing")
        pages.get(use: overview)
        pages.post("campaigns", use: launch)
        pages.get("campaigns", ":id", use: campaign)
        pages.get("simulations", ":id", use: simulation)
        pages.get("templates", use: templates)
        pages.post("templates", use: createTemplate)
    }

    private func client(_ req: Request) async throws -> Client {
        let scope = try req.scope()
        try scope.require(.managePhishing)
        return try await scope.actingClient()
    }

    private func overviewPage(_ req: Request, errors: [FormError] = [], status: HTTPStatus = .ok) async throws -> Response {
        let client = try await client(req)
        let service = req.phishingCampaigns
        let campaigns = try await service.campaigns(in: client).sort(\.$createdAt, .descending).limit(50).all()
        let progress = try await service.progress(for: campaigns.compactMap(\.id))
        let rows = campaigns.map { campaign in
            let figures = progress[campaign.id!] ?? PhishingProgress()
            return CampaignRow(href: DashboardPath.phishingCampaign(campaign.id!.uuidString), name: campaign.name, status: campaign.status,
                               progress: figures, sentPercent: figures.total == 0 ? 0 : figures.sent * 100 / figures.total)
        }
        let templates = try await req.phishingTemplates.visible(to: client).sort(\.$name).limit(200).all()
            .map { Choice(id: $0.id!.uuidString, name: $0.name) }
        let profiles = try await SendingProfile.query(on: req.db).filter(\.$clientID == client.id!).sort(\.$name).all()
            .map { Choice(id: $0.id!.uuidString, name: $0.name) }
        let stats = try await PhishingStatsService(db: req.db).stats(clientID: client.id!, from: nil, to: nil)
        let chart = FunnelChart.svg([.init(label: "Sent", value: stats.totals.sent), .init(label: "Opened", value: stats.totals.opened),
                                     .init(label: "Clicked", value: stats.totals.clicked), .init(label: "Submitted", value: stats.totals.submitted),
                                     .init(label: "Reported", value: stats.totals.reported)])
        return try await req.page("phishing", OverviewPage(layout: Layout(title: "Phishing simulation", principal: try req.principal(), req: req),
                                                           campaigns: rows, templates: templates, profiles: profiles, statsChart: chart,
                                                           totals: stats.totals, errors: errors), status: status)
    }

    @Sendable func overview(req: Request) async throws -> Response { try await overviewPage(req) }

    /// The wizard in one form: name, templates, profile, audience departments, sending window in hours.
    @Sendable func launch(req: Request) async throws -> Response {
        let client = try await client(req)
        let fields = FormFields(req.body.string ?? "")
        var input = PhishingCampaignInput()
        input.name = fields.first("name")
        input.templateIds = fields.all("template")
        input.sendingProfileId = fields.first("profile").flatMap { $0.isEmpty ? nil : $0 }
        let departments = (fields.first("departments") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        input.audience = departments.isEmpty ? .init(type: "all") : .init(type: "departments", departments: departments)
        if let hours = fields.first("window_hours").flatMap(Double.init), hours > 0 { input.sendBy = req.now.addingTimeInterval(hours * 3600) }
        let service = req.phishingCampaigns
        do {
            let campaign = try await service.create(input, in: client, templates: req.phishingTemplates, modules: try req.moduleService())
            try await service.launch(campaign, in: client)
            return req.redirect(to: DashboardPath.phishingCampaign(campaign.id!.uuidString) + "?notice=phishing_launched")
        } catch {
            guard let errors = FormError.from(error) else { throw error }
            return try await overviewPage(req, errors: errors, status: .unprocessableEntity)
        }
    }

    @Sendable func campaign(req: Request) async throws -> Response {
        let client = try await client(req)
        let service = req.phishingCampaigns
        let campaign = try await service.campaign(req.parameters.get("id"), in: client)
        let response = try await service.response(campaign)
        let simulations = try await Simulation.query(on: req.db).filter(\.$campaign.$id == campaign.id!)
            .sort(\.$stage, .descending).sort(\.$lastName).limit(200).all()
        let rows = simulations.map { simulation in
            ResultRow(href: DashboardPath.phishingSimulation(simulation.id!.uuidString), name: "\(simulation.firstName) \(simulation.lastName)",
                      email: simulation.email, department: simulation.department,
                      status: Simulation.Stage(rawValue: simulation.stage)?.name ?? "pending", reported: simulation.reportedAt != nil,
                      sendStatus: simulation.sendStatus)
        }
        let progress = response.progress
        let chart = FunnelChart.svg([.init(label: "Sent", value: progress.sent), .init(label: "Opened", value: progress.opened),
                                     .init(label: "Clicked", value: progress.clicked), .init(label: "Submitted", value: progress.submitted),
                                     .init(label: "Reported", value: progress.reported)])
        var layout = Layout(title: campaign.name, principal: try req.principal(), req: req)
        if ["scheduled", "sending"].contains(campaign.status) { layout.refresh = 5 }
        return try await req.page("phishing-campaign", CampaignPage(
            layout: layout, campaign: response, chart: chart, results: rows,
            exportPath: "/api/v1/phishing/campaigns/\(campaign.id!)/export"))
    }

    @Sendable func simulation(req: Request) async throws -> Response {
        let client = try await client(req)
        guard let id = req.parameters.get("id").flatMap(UUID.init(uuidString:)),
              let simulation = try await Simulation.query(on: req.db).filter(\.$id == id).filter(\.$clientID == client.id!).first() else {
            throw APIError.notFound("Simulation")
        }
        let events = try await PhishingEvent.query(on: req.db).filter(\.$simulationID == id).sort(\.$occurredAt).limit(500).all()
        return try await req.page("phishing-simulation", TimelinePage(
            layout: Layout(title: "\(simulation.firstName) \(simulation.lastName)", principal: try req.principal(), req: req),
            simulation: SimulationResponse(simulation),
            events: events.map { .init(kind: $0.kind, occurredAt: $0.occurredAt, ip: $0.ip, userAgent: $0.userAgent, flagged: $0.isBot,
                                       flagReason: $0.botReason, details: $0.details) }))
    }

    private func templatesPage(_ req: Request, errors: [FormError] = [], status: HTTPStatus = .ok) async throws -> Response {
        let client = try await client(req)
        let templates = try await req.phishingTemplates.visible(to: client).sort(\.$name).limit(200).all().map {
            TemplateRow(name: $0.name, category: $0.category.replacingOccurrences(of: "_", with: " "), difficulty: $0.difficulty,
                        builtin: $0.isBuiltin, previewPath: DashboardPath.phishingPreview($0.id!.uuidString))
        }
        return try await req.page("phishing-templates", TemplatesPage(
            layout: Layout(title: "Phishing templates", principal: try req.principal(), req: req), templates: templates, errors: errors), status: status)
    }

    @Sendable func templates(req: Request) async throws -> Response { try await templatesPage(req) }

    @Sendable func createTemplate(req: Request) async throws -> Response {
        let client = try await client(req)
        let fields = FormFields(req.body.string ?? "")
        let input = PhishingTemplateInput(
            name: fields.first("name"), category: fields.first("category"), subject: fields.first("subject"),
            senderName: fields.first("sender_name"), senderEmail: fields.first("sender_email"), html: fields.first("html"),
            landingHtml: fields.first("landing_html").flatMap { $0.isEmpty ? nil : $0 },
            redFlags: (fields.first("red_flags") ?? "").split(separator: "\n").map { String($0) })
        do {
            _ = try await req.phishingTemplates.create(input, in: client)
            return req.redirect(to: DashboardPath.phishingTemplates + "?notice=template_created")
        } catch {
            guard let errors = FormError.from(error) else { throw error }
            return try await templatesPage(req, errors: errors, status: .unprocessableEntity)
        }
    }
}
