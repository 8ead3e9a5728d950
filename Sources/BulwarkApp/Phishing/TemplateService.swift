import Fluent
import Vapor

struct PhishingTemplateInput: Decodable, Sendable {
    var sourceTemplateId: String?
    var name: String?
    var category: String?
    var difficulty: String?
    var locale: String?
    var subject: String?
    var senderName: String?
    var senderEmail: String?
    var html: String?
    var text: String?
    var landingHtml: String?
    var landingFields: [String]?
    var redFlags: [String]?
}

struct PhishingTemplateResponse: Encodable, Sendable {
    let id: UUID
    let name: String
    let category: String
    let difficulty: String
    let locale: String
    let subject: String
    let senderName: String
    let senderEmail: String
    let html: String
    let text: String
    let landingHtml: String
    let landingFields: [String]
    let redFlags: [String]
    let builtin: Bool
    @Nullable var sourceTemplateId: UUID?
    let createdAt: Date?
    let updatedAt: Date?

    init(_ template: PhishingTemplate) {
        id = template.id!
        name = template.name
        category = template.category
        difficulty = template.difficulty
        locale = template.locale
        subject = template.subject
        senderName = template.senderName
        senderEmail = template.senderEmail
        html = template.html
        text = template.text
        landingHtml = template.landingHTML
        landingFields = template.landingFields
        redFlags = template.redFlags
        builtin = template.isBuiltin
        sourceTemplateId = template.sourceTemplateID
        createdAt = template.createdAt
        updatedAt = template.updatedAt
    }
}

/// Phishing templates: the built-in library (read-only) and an organisation's own, validated as Mustache.
struct PhishingTemplateService: Sendable {
    let db: any Database
    let actor: AuditActor
    let now: Date

    static let categories = ["credentials", "invoice", "delivery", "hr", "it_notice", "shared_file", "mfa_fatigue",
                             "executive_request", "other"]
    static let difficulties = ["easy", "medium", "hard"]

    func visible(to client: Client) -> QueryBuilder<PhishingTemplate> {
        PhishingTemplate.query(on: db).filter(\.$archivedAt == nil).group(.or) { group in
            group.filter(\.$companyID == nil)
            group.group(.and) { $0.filter(\.$companyID == client.$company.id).filter(\.$clientID == nil) }
            group.filter(\.$clientID == client.id)
        }
    }

    func template(_ rawID: String?, visibleTo client: Client) async throws -> PhishingTemplate {
        guard let id = rawID.flatMap(UUID.init(uuidString:)),
              let template = try await visible(to: client).filter(\.$id == id).first() else {
            throw APIError.notFound("Template")
        }
        return template
    }

    func create(_ input: PhishingTemplateInput, in client: Client) async throws -> PhishingTemplate {
        let template = PhishingTemplate()
        template.companyID = client.$company.id
        template.clientID = client.id
        if let sourceID = input.sourceTemplateId {
            let source = try await self.template(sourceID, visibleTo: client)
            template.sourceTemplateID = source.id
            // Plain assignments: a key-path write would read the new model's unset fields first.
            template.name = source.name
            template.category = source.category
            template.difficulty = source.difficulty
            template.locale = source.locale
            template.subject = source.subject
            template.senderName = source.senderName
            template.senderEmail = source.senderEmail
            template.html = source.html
            template.text = source.text
            template.landingHTML = source.landingHTML
            template.landingFieldsJSON = source.landingFieldsJSON
            template.redFlagsJSON = source.redFlagsJSON
        }
        try apply(input, to: template, creating: template.sourceTemplateID == nil)
        try await save(template, action: template.sourceTemplateID == nil ? "phishing_template.created" : "phishing_template.copied", client: client)
        return template
    }

    func update(_ template: PhishingTemplate, with input: PhishingTemplateInput, in client: Client) async throws -> PhishingTemplate {
        try ensureEditable(template, client: client)
        try apply(input, to: template, creating: false)
        try await save(template, action: "phishing_template.updated", client: client)
        return template
    }

    func archive(_ template: PhishingTemplate, in client: Client) async throws {
        try ensureEditable(template, client: client)
        template.archivedAt = now
        try await save(template, action: "phishing_template.deleted", client: client)
    }

    private func ensureEditable(_ template: PhishingTemplate, client: Client) throws {
        if template.isBuiltin {
            throw APIError.forbidden("Built-in templates are read-only; create a copy with source_template_id to customise one.")
        }
        if template.clientID != client.id { throw APIError.forbidden("This template is shared by your company and is changed there.") }
    }

    private func save(_ template: PhishingTemplate, action: String, client: Client) async throws {
        let actor = self.actor
        let now = self.now
        try await db.transaction { db in
            try await template.save(on: db)
            try await AuditService(db: db, now: now).record(
                AuditEvent(action, target: ("phishing_template", template.id), companyID: client.$company.id, clientID: client.id,
                           details: ["name": .string(template.name)]), by: actor)
        }
    }

    private func apply(_ input: PhishingTemplateInput, to template: PhishingTemplate, creating: Bool) throws {
        var errors = FieldErrors()
        func text(_ value: String?, _ field: String, max: Int = 255) -> String? {
            creating ? errors.required(value, field: field, maxLength: max) : errors.optional(value, field: field, maxLength: max)
        }
        let name = text(input.name, "name", max: 200)
        let category = errors.oneOf(creating ? (input.category ?? "") : input.category, field: "category", allowed: Self.categories)
        let difficulty = errors.oneOf(input.difficulty, field: "difficulty", allowed: Self.difficulties)
        let locale = errors.optional(input.locale, field: "locale", maxLength: 10)
        let subject = text(input.subject, "subject", max: 500)
        let senderName = text(input.senderName, "sender_name", max: 200)
        let senderEmail = errors.email(input.senderEmail, field: "sender_email", required: creating)
        let html = text(input.html, "html", max: 500_000)
        let plain = errors.optional(input.text, field: "text", maxLength: 500_000)
        let landing = errors.optional(input.landingHtml, field: "landing_html", maxLength: 500_000)
        let fields = input.landingFields?.map { $0.trimmingCharacters(in: .whitespaces) }
        if let fields, fields.contains(where: { $0.isEmpty || $0.count > 100 }) {
            errors.add("landing_fields", "Field names must be 1 to 100 characters.")
        }
        let flags = input.redFlags?.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        for (field, value) in [("subject", subject), ("sender_name", senderName), ("html", html), ("text", plain), ("landing_html", landing)] {
            guard let value else { continue }
            do { _ = try TemplateRenderer.compile(value, field: field) } catch let error as TemplateRenderer.InvalidTemplate {
                errors.add(field, error.message)
            }
        }
        try errors.throwIfAny()
        if let name { template.name = name }
        if let category { template.category = category }
        if let difficulty { template.difficulty = difficulty } else if creating { template.difficulty = "medium" }
        if let locale { template.locale = locale } else if creating { template.locale = "en" }
        if let subject { template.subject = subject }
        if let senderName { template.senderName = senderName }
        if let senderEmail { template.senderEmail = senderEmail }
        if let html { template.html = html }
        if let plain { template.text = plain } else if creating { template.text = Self.plainText(fromHTML: template.html) }
        if let landing { template.landingHTML = landing } else if creating { template.landingHTML = "" }
        if let fields { template.landingFields = fields } else if creating { template.landingFields = [] }
        if let flags { template.redFlags = flags } else if creating { template.redFlags = [] }
    }

    /// A readable text part for templates written only in HTML.
    static func plainText(fromHTML html: String) -> String {
        html.replacingOccurrences(of: "<br>", with: "\n").replacingOccurrences(of: "</p>", with: "\n\n")
            .replacingOccurrences(of: "<[^>]+>", with: "", options: .regularExpression)
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

extension Request {
    var phishingTemplates: PhishingTemplateService { PhishingTemplateService(db: db, actor: auditActor, now: now) }
}
