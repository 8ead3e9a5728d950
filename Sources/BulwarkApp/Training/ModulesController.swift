import Fluent
import Vapor

/// Seed 000: /api/v1/modules.
struct ModulesController: RouteCollection {
    func boot(routes: any RoutesBuilder) throws {
        let modules = routes.grouped("api", "v1", "modules")
        modules.get(use: list)
        modules.post(use: create)
        modules.get(":id", use: show)
        modules.put(":id", use: update)
        modules.delete(":id", use: delete)
    }

    @Sendable func list(req: Request) async throws -> Response {
        let service = try req.moduleService()
        try service.scope.require(.manageTraining)
        let page = try PageParams(from: req)
        var errors = FieldErrors()
        let filters = ModuleService.Filters(
            search: errors.optional(req.queryText("search"), field: "search"),
            category: errors.oneOf(req.queryText("category"), field: "category", allowed: ModuleService.categories),
            difficulty: errors.oneOf(req.queryText("difficulty"), field: "difficulty", allowed: ModuleService.difficulties),
            builtin: errors.oneOf(req.queryText("builtin"), field: "builtin", allowed: ["true", "false"]).map { $0 == "true" })
        try errors.throwIfAny(from: .query)
        let client = try await service.scope.actingClient()
        return try req.envelope(page: try await service.list(for: client, filters: filters, page: page))
    }

    @Sendable func create(req: Request) async throws -> Response {
        let service = try req.moduleService()
        try service.scope.require(.manageTraining)
        let input = try req.decodeBody(ModuleInput.self)
        let client = try await service.scope.actingClient()
        let module = try await service.create(input, in: client)
        return try req.envelope(ModuleDetailResponse(module), status: .created)
    }

    @Sendable func show(req: Request) async throws -> Response {
        let service = try req.moduleService()
        try service.scope.require(.manageTraining)
        let client = try await service.scope.actingClient()
        return try req.envelope(ModuleDetailResponse(try await service.module(req.parameters.get("id"), visibleTo: client)))
    }

    @Sendable func update(req: Request) async throws -> Response {
        let service = try req.moduleService()
        try service.scope.require(.manageTraining)
        let client = try await service.scope.actingClient()
        let module = try await service.module(req.parameters.get("id"), visibleTo: client)
        let input = try req.decodeBody(ModuleInput.self)
        return try req.envelope(ModuleDetailResponse(try await service.update(module, with: input, in: client)))
    }

    @Sendable func delete(req: Request) async throws -> Response {
        let service = try req.moduleService()
        try service.scope.require(.manageTraining)
        let client = try await service.scope.actingClient()
        let module = try await service.module(req.parameters.get("id"), visibleTo: client)
        try await service.archive(module, in: client)
        return try req.envelope(ModuleSummaryResponse(module))
    }
}
