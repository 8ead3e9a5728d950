import Foundation

struct ModuleSummaryResponse: Encodable, Sendable {
    let id: UUID
    let title: String
    let summary: String
    let category: String
    let difficulty: String
    let estimatedMinutes: Int
    let locale: String
    let passMark: Int
    let maxAttempts: Int
    let builtin: Bool
    @Nullable var sourceModuleId: UUID?
    let lessonCount: Int
    let questionCount: Int
    let createdAt: Date?
    let updatedAt: Date?

    init(_ module: TrainingModule) {
        id = module.id!
        title = module.title
        summary = module.summary
        category = module.category
        difficulty = module.difficulty
        estimatedMinutes = module.estimatedMinutes
        locale = module.locale
        passMark = module.passMark
        maxAttempts = module.maxAttempts
        builtin = module.isBuiltin
        sourceModuleId = module.sourceModuleID
        lessonCount = module.lessons.count
        questionCount = module.questions.count
        createdAt = module.createdAt
        updatedAt = module.updatedAt
    }
}

struct LessonResponse: Encodable, Sendable {
    let id: String
    let position: Int
    let title: String
    let body: String
    let bodyHtml: String
}

/// A question as an administrator sees it, with the answers.
struct QuestionResponse: Encodable, Sendable {
    let id: String
    let prompt: String
    let kind: String
    let options: [String]
    let correctAnswers: [Int]
    let explanation: String

    init(_ question: Question) {
        id = question.id
        prompt = question.prompt
        kind = question.kind
        options = question.options
        correctAnswers = question.correct
        explanation = question.explanation
    }
}

/// A question as a learner sees it before answering: never the correct answers.
struct LearnerQuestionResponse: Encodable, Sendable {
    let id: String
    let prompt: String
    let kind: String
    let options: [String]

    init(_ question: Question) {
        id = question.id
        prompt = question.prompt
        kind = question.kind
        options = question.options
    }
}

struct ModuleDetailResponse: Encodable, Sendable {
    let module: ModuleSummaryResponse
    let lessons: [LessonResponse]
    let questions: [QuestionResponse]

    enum CodingKeys: String, CodingKey { case lessons, questions }

    init(_ module: TrainingModule) {
        self.module = ModuleSummaryResponse(module)
        lessons = module.lessons.enumerated().map {
            LessonResponse(id: $1.id, position: $0 + 1, title: $1.title, body: $1.body, bodyHtml: SafeMarkdown.html($1.body))
        }
        questions = module.questions.map(QuestionResponse.init)
    }

    /// The summary's fields and the detail's lists in one flat object.
    func encode(to encoder: any Encoder) throws {
        try module.encode(to: encoder)
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(lessons, forKey: .lessons)
        try container.encode(questions, forKey: .questions)
    }
}

/// Body of POST/PUT /api/v1/modules.
struct ModuleInput: Decodable, Sendable {
    struct LessonInput: Decodable, Sendable { var title: String?; var body: String? }
    struct QuestionInput: Decodable, Sendable {
        var prompt: String?
        var kind: String?
        var options: [String]?
        var correctAnswers: [Int]?
        var explanation: String?
    }

    var sourceModuleId: String?
    var title: String?
    var summary: String?
    var category: String?
    var difficulty: String?
    var estimatedMinutes: Int?
    var locale: String?
    var passMark: Int?
    var maxAttempts: Int?
    var lessons: [LessonInput]?
    var questions: [QuestionInput]?
}
