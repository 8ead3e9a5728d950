import Fluent
import Vapor

/// Manager and administrator training pages: team, module library, campaigns with progress and who is overdue.
struct DashboardTrainingController: RouteCollection {
    struct TeamPage: Encodable {
        let layout: Layout
        let members: [TeamService.Member]
        let stats: TeamService.Stats
    }

    struct ModuleRow: Encodable {
        let title: String
        let category: String
        let difficulty: String
        let minutes: Int
        let lessons: Int
        let questions: Int
        let builtin: Bool
        let copyAction: String
    }

    struct ModulesPage: Encodable {
        let layout: Layout
        let modules: [ModuleRow]
    }

    struct CampaignRow: Encodable {
        let href: String
        let name: String
        let status: String
        let due: String
        let stats: CampaignStats
    }

    struct CampaignsPage: Encodable {
        let layout: Layout
        let campaigns: [CampaignRow]
        let newPath = DashboardPath.campaignsNew
    }

    struct CampaignForm: Encodable {
        struct Choice: Encodable { let id: String; let title: String }
        let layout: Layout
        let modules: [Choice]
        let action = DashboardPath.campaigns
        let errors: [FormError]
    }

    struct CampaignPage: Encodable {
        let layout: Layout
        let campaign: CampaignResponse
        let overdue: [OverdueService.Row]
    }

    func boot(routes: any RoutesBuilder) throws {
        let pages = routes.grouped(DashboardGuard())
        pages.get("team", use: team)
        pages.get("modules", use: modules)
        pages.post("modules", ":id", "copy", use: copyModule)
        pages.get("campaigns", use: campaigns)
        pages.get("campaigns", "new", use: newCampaign)
        pages.post("campaigns", use: createCampaign)
        pages.get("campaigns", ":id", use: campaign)
    }

    @Sendable func team(req: Request) async throws -> Response {
        let principal = try req.principal()
        try principal.require(.viewTeam)
        let service = TeamService(db: req.db, now: req.now)
        let members = try await service.members(of: principal.user, allLevels: req.queryText("depth") == "all")
        return try await req.page("team", TeamPage(layout: Layout(title: "My team", principal: principal, req: req),
                                                   members: members, stats: service.stats(of: members)))
    }

    @Sendable func modules(req: Request) async throws -> Response {
        let service = try req.moduleService()
        try service.scope.require(.manageTraining)
        let client = try await service.scope.actingClient()
        let page = try await service.list(for: client, filters: .init(), page: PageParams(page: 1, perPage: 100))
        let rows = page.items.map {
            ModuleRow(title: $0.title, category: $0.category.replacingOccurrences(of: "_", with: " "), difficulty: $0.difficulty,
                      minutes: $0.estimatedMinutes, lessons: $0.lessonCount, questions: $0.questionCount, builtin: $0.builtin,
                      copyAction: DashboardPath.moduleCopy($0.id.uuidString))
        }
        return try await req.page("modules", ModulesPage(layout: Layout(title: "Training modules", principal: service.scope.principal, req: req),
                                                         modules: rows))
    }

    @Sendable func copyModule(req: Request) async throws -> Response {
        let service = try req.moduleService()
        try service.scope.require(.manageTraining)
        let client = try await service.scope.actingClient()
        var input = ModuleInput()
        input.sourceModuleId = req.parameters.get("id")
        _ = try await service.create(input, in: client)
        return req.redirect(to: DashboardPath.modules + "?notice=module_copied")
    }

    @Sendable func campaigns(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageTraining)
        let client = try await scope.actingClient()
        let page = try await req.campaignService.list(in: client, status: nil, search: nil, page: PageParams(page: 1, perPage: 100))
        let rows = page.items.map {
            CampaignRow(href: DashboardPath.campaign($0.id.uuidString), name: $0.name, status: $0.status,
                        due: String(ISO8601.string($0.dueAt).prefix(10)), stats: $0.stats)
        }
        return try await req.page("campaigns", CampaignsPage(layout: Layout(title: "Campaigns", principal: scope.principal, req: req),
                                                             campaigns: rows))
    }

    private func campaignForm(_ req: Request, errors: [FormError] = [], status: HTTPStatus = .ok) async throws -> Response {
        let service = try req.moduleService()
        try service.scope.require(.manageTraining)
        let client = try await service.scope.actingClient()
        let modules = try await service.list(for: client, filters: .init(), page: PageParams(page: 1, perPage: 100)).items
        return try await req.page("campaign-form", CampaignForm(
            layout: Layout(title: "New campaign", principal: service.scope.principal, req: req),
            modules: modules.map { .init(id: $0.id.uuidString, title: $0.title) }, errors: errors), status: status)
    }

    @Sendable func newCampaign(req: Request) async throws -> Response {
        try await campaignForm(req)
    }

    /// Form fields: name, module (repeated), departments (comma separated, empty for everyone), due (yyyy-mm-dd).
    @Sendable func createCampaign(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageTraining)
        let fields = FormFields(req.body.string ?? "")
        var input = CampaignInput()
        input.name = fields.first("name")
        input.moduleIds = fields.all("module")
        let departments = (fields.first("departments") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        input.audience = departments.isEmpty ? .init(type: "all") : .init(type: "departments", departments: departments)
        if let due = fields.first("due"), !due.isEmpty {
            guard let date = ISO8601.parse(due) else {
                return try await campaignForm(req, errors: [FormError(field: "due", message: "Choose a due date.")], status: .unprocessableEntity)
            }
            input.dueAt = date
        }
        input.status = "active"
        do {
            let campaign = try await req.campaignService.create(input, in: try await scope.actingClient(), modules: try req.moduleService())
            return req.redirect(to: DashboardPath.campaign(campaign.id!.uuidString) + "?notice=campaign_created")
        } catch {
            guard let errors = FormError.from(error) else { throw error }
            return try await campaignForm(req, errors: errors, status: .unprocessableEntity)
        }
    }

    @Sendable func campaign(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageTraining)
        let client = try await scope.actingClient()
        let service = req.campaignService
        let campaign = try await service.campaign(req.parameters.get("id"), in: client)
        let overdue = try await OverdueService(db: req.db, now: req.now)
            .list(clientID: client.id!, department: nil, managerID: nil, page: PageParams(page: 1, perPage: 100)).items
            .compactMap { row -> OverdueService.Row? in
                let items = row.items.filter { $0.campaignId == campaign.id }
                return items.isEmpty ? nil : OverdueService.Row(user: row.user, overdueCount: items.count,
                                                                maxDaysOverdue: items.map(\.daysOverdue).max() ?? 0, items: items)
            }
        return try await req.page("campaign", CampaignPage(layout: Layout(title: campaign.name, principal: scope.principal, req: req),
                                                           campaign: try await service.response(campaign), overdue: overdue))
    }
}

/// An URL-encoded form body with repeated fields (checkbox groups), which keyed decoding cannot express.
struct FormFields {
    private var pairs: [(String, String)] = []

    init(_ body: String) {
        for pair in body.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1).map {
                String($0).replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? ""
            }
            pairs.append((parts[0], parts.count > 1 ? parts[1] : ""))
        }
    }

    func first(_ name: String) -> String? { pairs.first { $0.0 == name }?.1 }
    var names: [String] { pairs.map(\.0) }
    func all(_ name: String) -> [String] { pairs.filter { $0.0 == name }.map(\.1) }
}
