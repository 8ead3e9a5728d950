import Fluent
import Vapor

/// Training modules: the built-in library (read-only) and an organisation's own modules and copies.
struct ModuleService: Sendable {
    let scope: Scope
    let actor: AuditActor
    let now: Date

    static let categories = ["phishing", "passwords", "social_engineering", "browsing", "ransomware", "data_handling",
                             "remote_work", "physical_security", "incident_reporting", "privacy", "mobile", "ai", "other"]
    static let difficulties = ["beginner", "intermediate", "advanced"]

    /// Modules the acting client may use: built-ins, its company's shared modules, its own.
    func visible(to client: Client) -> QueryBuilder<TrainingModule> {
        TrainingModule.query(on: scope.db)
            .filter(\.$archivedAt == nil)
            .group(.or) { group in
                group.filter(\.$companyID == nil)
                group.group(.and) { $0.filter(\.$companyID == client.$company.id).filter(\.$clientID == nil) }
                group.filter(\.$clientID == client.id)
            }
    }

    func module(_ rawID: String?, visibleTo client: Client) async throws -> TrainingModule {
        guard let id = rawID.flatMap(UUID.init(uuidString:)),
              let module = try await visible(to: client).filter(\.$id == id).first() else {
            throw APIError.notFound("Module")
        }
        return module
    }

    struct Filters: Sendable {
        var search: String?
        var category: String?
        var difficulty: String?
        var builtin: Bool?
    }

    func list(for client: Client, filters: Filters, page: PageParams) async throws -> PageResult<ModuleSummaryResponse> {
        let query = visible(to: client)
        if let search = filters.search { query.search(search, in: ["title", "summary"]) }
        if let category = filters.category { query.filter(\.$category == category) }
        if let difficulty = filters.difficulty { query.filter(\.$difficulty == difficulty) }
        if filters.builtin == true { query.filter(\.$companyID == nil) }
        if filters.builtin == false { query.filter(\.$companyID != nil) }
        let (items, meta) = try await query.sort(\.$title).sort(\.$id).pageOfModels(page)
        return PageResult(items: items.map(ModuleSummaryResponse.init), meta: meta)
    }

    /// Creates a module, or with `source_module_id` a customisable copy of a visible one (fields given override it).
    func create(_ input: ModuleInput, in client: Client) async throws -> TrainingModule {
        var source: TrainingModule?
        if let sourceID = input.sourceModuleId {
            source = try await module(sourceID, visibleTo: client)
        }
        let module = TrainingModule()
        module.companyID = client.$company.id
        module.clientID = client.id
        module.sourceModuleID = source?.id
        if let source { copyContent(from: source, to: module) }
        try apply(input, to: module, creating: source == nil)
        let actor = self.actor
        let now = self.now
        let action = source == nil ? "module.created" : "module.copied"
        try await scope.db.transaction { db in
            try await module.create(on: db)
            try await AuditService(db: db, now: now).record(
                AuditEvent(action, target: ("module", module.id),
                           companyID: client.$company.id, clientID: client.id,
                           details: ["title": .string(module.title)]), by: actor)
        }
        return module
    }

    func update(_ module: TrainingModule, with input: ModuleInput, in client: Client) async throws -> TrainingModule {
        try ensureEditable(module, by: client)
        try apply(input, to: module, creating: false)
        let actor = self.actor
        let now = self.now
        try await scope.db.transaction { db in
            try await module.save(on: db)
            try await AuditService(db: db, now: now).record(
                AuditEvent("module.updated", target: ("module", module.id), companyID: client.$company.id, clientID: client.id),
                by: actor)
        }
        return module
    }

    /// Archives the module: enrolments and certificates that name it stay intact.
    func archive(_ module: TrainingModule, in client: Client) async throws {
        try ensureEditable(module, by: client)
        let actor = self.actor
        let now = self.now
        try await scope.db.transaction { db in
            module.archivedAt = now
            try await module.save(on: db)
            try await AuditService(db: db, now: now).record(
                AuditEvent("module.deleted", target: ("module", module.id), companyID: client.$company.id, clientID: client.id),
                by: actor)
        }
    }

    private func ensureEditable(_ module: TrainingModule, by client: Client) throws {
        if module.isBuiltin {
            throw APIError.forbidden("Built-in modules are read-only; create a copy with source_module_id to customise one.")
        }
        if module.clientID != client.id && !scope.principal.isCompanyWide {
            throw APIError.forbidden("This module is shared by your company and can only be changed there.")
        }
    }

    private func copyContent(from source: TrainingModule, to module: TrainingModule) {
        module.title = source.title
        module.summary = source.summary
        module.category = source.category
        module.difficulty = source.difficulty
        module.estimatedMinutes = source.estimatedMinutes
        module.locale = source.locale
        module.passMark = source.passMark
        module.maxAttempts = source.maxAttempts
        module.lessons = source.lessons.map { Lesson(id: UUID().uuidString, title: $0.title, body: $0.body) }
        module.questions = source.questions.map {
            Question(id: UUID().uuidString, prompt: $0.prompt, kind: $0.kind, options: $0.options, correct: $0.correct,
                     explanation: $0.explanation)
        }
    }

    /// Validates every field at once and applies the ones given. On create the core fields are required.
    private func apply(_ input: ModuleInput, to module: TrainingModule, creating: Bool) throws {
        var errors = FieldErrors()
        let title = creating ? errors.required(input.title, field: "title", maxLength: 200)
                             : errors.optional(input.title, field: "title", maxLength: 200)
        let summary = errors.optional(input.summary, field: "summary", maxLength: 2000)
        let category = creating ? errors.required(input.category, field: "category") : input.category
        _ = errors.oneOf(category, field: "category", allowed: Self.categories)
        let difficulty = errors.oneOf(input.difficulty, field: "difficulty", allowed: Self.difficulties)
        let minutes = errors.range(input.estimatedMinutes, field: "estimated_minutes", min: 1, max: 600)
        let locale = errors.optional(input.locale, field: "locale", maxLength: 10)
        let passMark = errors.range(input.passMark, field: "pass_mark", min: 0, max: 100)
        let maxAttempts = errors.range(input.maxAttempts, field: "max_attempts", min: 0, max: 50)
        var lessons: [Lesson]?
        if let lessonInputs = input.lessons {
            if lessonInputs.isEmpty { errors.add("lessons", "A module needs at least one lesson.") }
            lessons = lessonInputs.enumerated().compactMap { index, lesson in
                let title = errors.required(lesson.title, field: "lessons.\(index).title", maxLength: 200)
                let body = errors.required(lesson.body, field: "lessons.\(index).body", maxLength: 100_000)
                guard let title, let body else { return nil }
                return Lesson(id: UUID().uuidString, title: title, body: body)
            }
        } else if creating {
            errors.add("lessons", "A module needs at least one lesson.")
        }
        var questions: [Question]?
        if let questionInputs = input.questions {
            questions = questionInputs.enumerated().compactMap { index, question in
                validate(question, at: index, errors: &errors)
            }
        }
        try errors.throwIfAny()
        if let title { module.title = title }
        if let summary { module.summary = summary } else if creating { module.summary = "" }
        if let category { module.category = category }
        if let difficulty { module.difficulty = difficulty } else if creating { module.difficulty = "beginner" }
        if let minutes { module.estimatedMinutes = minutes } else if creating { module.estimatedMinutes = 10 }
        if let locale { module.locale = locale } else if creating { module.locale = "en" }
        if let passMark { module.passMark = passMark } else if creating { module.passMark = 80 }
        if let maxAttempts { module.maxAttempts = maxAttempts } else if creating { module.maxAttempts = 3 }
        if let lessons { module.lessons = lessons }
        if let questions { module.questions = questions } else if creating { module.questions = [] }
    }

    private func validate(_ input: ModuleInput.QuestionInput, at index: Int, errors: inout FieldErrors) -> Question? {
        let field = "questions.\(index)"
        let prompt = errors.required(input.prompt, field: "\(field).prompt", maxLength: 2000)
        let kind = errors.oneOf(input.kind ?? "single", field: "\(field).kind", allowed: ["single", "multiple"])
        let options = (input.options ?? []).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        if options.count < 2 || options.contains(where: \.isEmpty) {
            errors.add("\(field).options", "A question needs at least two non-empty options.")
        }
        let correct = Array(Set(input.correctAnswers ?? [])).sorted()
        if correct.isEmpty {
            errors.add("\(field).correct_answers", "Mark at least one correct option.")
        } else if correct.contains(where: { $0 < 0 || $0 >= options.count }) {
            errors.add("\(field).correct_answers", "Correct answers must be indexes of the options (0-based).")
        } else if kind == "single" && correct.count != 1 {
            errors.add("\(field).correct_answers", "A single-choice question has exactly one correct option.")
        }
        guard let prompt, let kind else { return nil }
        return Question(id: UUID().uuidString, prompt: prompt, kind: kind, options: options, correct: correct,
                        explanation: input.explanation?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "")
    }
}

extension Request {
    func moduleService() throws -> ModuleService {
        ModuleService(scope: try scope(), actor: auditActor, now: now)
    }
}
