import Fluent
import Vapor

/// Seed 002: /api/v3/companies and their clients.
struct CompaniesV3Controller: RouteCollection {
    func boot(routes: any RoutesBuilder) throws {
        let companies = routes.grouped("api", "v3", "companies")
        companies.get(use: list)
        companies.get(":companyId", use: show)
        companies.get(":companyId", "clients", use: clients)
        companies.post(":companyId", "clients", use: createClient)
    }

    @Sendable func list(req: Request) async throws -> Response {
        let service = try req.tenancyService()
        return try req.envelope(page: try await service.companies(page: try PageParams(from: req)))
    }

    @Sendable func show(req: Request) async throws -> Response {
        let service = try req.tenancyService()
        try service.scope.require(.viewClients)
        let company = try await service.scope.company(req.parameters.get("companyId"))
        return try req.envelope(try await service.response(for: company))
    }

    @Sendable func clients(req: Request) async throws -> Response {
        let service = try req.tenancyService()
        try service.scope.require(.viewClients)
        var errors = FieldErrors()
        let page = try PageParams(from: req)
        let filters = TenancyService.ClientFilters(
            status: errors.oneOf(req.queryText("status")?.uppercased(), field: "status", allowed: Client.statuses),
            search: errors.optional(req.queryText("search"), field: "search"))
        try errors.throwIfAny(from: .query)
        let company = try await service.scope.company(req.parameters.get("companyId"))
        return try req.envelope(page: try await service.clients(of: company, filters: filters, page: page))
    }

    @Sendable func createClient(req: Request) async throws -> Response {
        let service = try req.tenancyService()
        let company = try await service.scope.company(req.parameters.get("companyId"))
        let input = try req.decodeBody(ClientInput.self)
        let client = try await service.createClient(in: company, input: input)
        return try req.envelope(try await service.response(for: client), status: .created)
    }
}
