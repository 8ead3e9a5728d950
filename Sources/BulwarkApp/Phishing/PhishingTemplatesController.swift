import Fluent
import Vapor

/// Seed 000: /api/v1/phishing/templates (+ /preview).
struct PhishingTemplatesController: RouteCollection {
    func boot(routes: any RoutesBuilder) throws {
        let templates = routes.grouped("api", "v1", "phishing", "templates")
        templates.get(use: list)
        templates.post(use: create)
        templates.get(":id", use: show)
        templates.put(":id", use: update)
        templates.delete(":id", use: delete)
        templates.get(":id", "preview", use: preview)
    }

    private func context(_ req: Request) async throws -> (PhishingTemplateService, Client) {
        let scope = try req.scope()
        try scope.require(.managePhishing)
        return (req.phishingTemplates, try await scope.actingClient())
    }

    @Sendable func list(req: Request) async throws -> Response {
        let page = try PageParams(from: req)
        var errors = FieldErrors()
        let category = errors.oneOf(req.queryText("category"), field: "category", allowed: PhishingTemplateService.categories)
        let difficulty = errors.oneOf(req.queryText("difficulty"), field: "difficulty", allowed: PhishingTemplateService.difficulties)
        let builtin = errors.oneOf(req.queryText("builtin"), field: "builtin", allowed: ["true", "false"])
        let search = errors.optional(req.queryText("search"), field: "search")
        try errors.throwIfAny(from: .query)
        let (service, client) = try await context(req)
        let query = service.visible(to: client)
        if let category { query.filter(\.$category == category) }
        if let difficulty { query.filter(\.$difficulty == difficulty) }
        if builtin == "true" { query.filter(\.$companyID == nil) }
        if builtin == "false" { query.filter(\.$companyID != nil) }
        if let search { query.search(search, in: ["name", "subject"]) }
        let (items, meta) = try await query.sort(\.$name).sort(\.$id).pageOfModels(page)
        return try req.envelope(items.map(PhishingTemplateResponse.init), pagination: meta)
    }

    @Sendable func create(req: Request) async throws -> Response {
        let (service, client) = try await context(req)
        let template = try await service.create(try req.decodeBody(PhishingTemplateInput.self), in: client)
        return try req.envelope(PhishingTemplateResponse(template), status: .created)
    }

    @Sendable func show(req: Request) async throws -> Response {
        let (service, client) = try await context(req)
        return try req.envelope(PhishingTemplateResponse(try await service.template(req.parameters.get("id"), visibleTo: client)))
    }

    @Sendable func update(req: Request) async throws -> Response {
        let (service, client) = try await context(req)
        let template = try await service.template(req.parameters.get("id"), visibleTo: client)
        let updated = try await service.update(template, with: try req.decodeBody(PhishingTemplateInput.self), in: client)
        return try req.envelope(PhishingTemplateResponse(updated))
    }

    @Sendable func delete(req: Request) async throws -> Response {
        let (service, client) = try await context(req)
        let template = try await service.template(req.parameters.get("id"), visibleTo: client)
        try await service.archive(template, in: client)
        return try req.envelope(PhishingTemplateResponse(template))
    }

    /// The email (or `?part=landing` the landing page) rendered for a sample person, under a sandbox policy so no
    /// script in it can run.
    @Sendable func preview(req: Request) async throws -> Response {
        let (service, client) = try await context(req)
        let template = try await service.template(req.parameters.get("id"), visibleTo: client)
        var errors = FieldErrors()
        let part = errors.oneOf(req.queryText("part") ?? "email", field: "part", allowed: ["email", "landing", "text"]) ?? "email"
        try errors.throwIfAny(from: .query)
        let context = TemplateRenderer.context(person: .sample, url: "#preview-link", pixelURL: nil,
                                               from: "\(template.senderName) <\(template.senderEmail)>")
        let body: String
        do {
            switch part {
            case "landing": body = try TemplateRenderer.render(template.landingHTML, field: "landing_html", context: context)
            case "text": body = try TemplateRenderer.render(template.text, field: "text", context: context)
            default: body = try TemplateRenderer.render(template.html, field: "html", context: context)
            }
        } catch let error as TemplateRenderer.InvalidTemplate {
            throw APIError.validation([error.field: [error.message]])
        }
        var headers = HTTPHeaders()
        headers.contentType = part == "text" ? .plainText : .html
        headers.replaceOrAdd(name: "Content-Security-Policy", value: "sandbox")
        headers.replaceOrAdd(name: "X-Content-Type-Options", value: "nosniff")
        return Response(status: .ok, headers: headers, body: .init(string: body))
    }
}
