import Fluent
import Vapor

/// A course: ordered lessons and a quiz. Built-in modules (no company) are global and read-only.
final class TrainingModule: Model, @unchecked Sendable {
    static let schema = "training_modules"

    @ID(key: .id) var id: UUID?
    @OptionalField(key: "company_id") var companyID: UUID?
    @OptionalField(key: "client_id") var clientID: UUID?
    /// Stable key of a built-in module (file name in Resources/Content/modules).
    @OptionalField(key: "builtin_key") var builtinKey: String?
    @OptionalField(key: "source_module_id") var sourceModuleID: UUID?
    @Field(key: "title") var title: String
    @Field(key: "summary") var summary: String
    @Field(key: "category") var category: String
    @Field(key: "difficulty") var difficulty: String
    @Field(key: "estimated_minutes") var estimatedMinutes: Int
    @Field(key: "locale") var locale: String
    @Field(key: "pass_mark") var passMark: Int
    /// 0 means unlimited attempts.
    @Field(key: "max_attempts") var maxAttempts: Int
    @Field(key: "lessons") var lessonsJSON: String
    @Field(key: "questions") var questionsJSON: String
    @OptionalField(key: "archived_at") var archivedAt: Date?
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?
    @Timestamp(key: "updated_at", on: .update) var updatedAt: Date?

    init() {}

    var isBuiltin: Bool { companyID == nil }

    var lessons: [Lesson] {
        get { (try? JSONDecoder().decode([Lesson].self, from: Data(lessonsJSON.utf8))) ?? [] }
        set { lessonsJSON = String(decoding: (try? JSONEncoder().encode(newValue)) ?? Data("[]".utf8), as: UTF8.self) }
    }

    var questions: [Question] {
        get { (try? JSONDecoder().decode([Question].self, from: Data(questionsJSON.utf8))) ?? [] }
        set { questionsJSON = String(decoding: (try? JSONEncoder().encode(newValue)) ?? Data("[]".utf8), as: UTF8.self) }
    }
}

struct Lesson: Codable, Sendable, Equatable {
    var id: String
    var title: String
    var body: String
}

/// A quiz question. Options are addressed by their index, in requests and responses alike.
struct Question: Codable, Sendable, Equatable {
    var id: String
    var prompt: String
    /// "single" or "multiple".
    var kind: String
    var options: [String]
    var correct: [Int]
    var explanation: String
}

struct CreateTrainingModules: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(TrainingModule.schema)
            .id()
            .field("company_id", .uuid, .references(Company.schema, .id, onDelete: .cascade))
            .field("client_id", .uuid, .references(Client.schema, .id, onDelete: .cascade))
            .field("builtin_key", .string)
            .field("source_module_id", .uuid)
            .field("title", .string, .required)
            .field("summary", .string, .required)
            .field("category", .string, .required)
            .field("difficulty", .string, .required)
            .field("estimated_minutes", .int, .required)
            .field("locale", .string, .required)
            .field("pass_mark", .int, .required)
            .field("max_attempts", .int, .required)
            .field("lessons", .string, .required)
            .field("questions", .string, .required)
            .field("archived_at", .datetime)
            .field("created_at", .datetime)
            .field("updated_at", .datetime)
            .unique(on: "builtin_key")
            .create()
        try await database.createIndex(on: TrainingModule.schema, name: "training_modules_owner_idx", columns: ["company_id", "client_id"])
    }

    func revert(on database: any Database) async throws {
        try await database.schema(TrainingModule.schema).delete()
    }
}
