import Fluent
import Vapor

/// Loads the built-in training library from Resources/Content/modules/*.json into the database at start,
/// updating modules whose file changed. Built-ins belong to no company and cannot be edited through the API.
enum ModuleLibrary {
    struct File: Decodable {
        struct LessonFile: Decodable { let title: String; let body: String }
        struct QuestionFile: Decodable {
            let prompt: String
            let kind: String
            let options: [String]
            let correct: [Int]
            let explanation: String
        }

        let key: String
        let title: String
        let summary: String
        let category: String
        let difficulty: String
        let estimatedMinutes: Int
        let passMark: Int
        let lessons: [LessonFile]
        let questions: [QuestionFile]
    }

    static func sync(_ app: Application) async throws {
        for file in try BuiltinContent.load(File.self, folder: "modules", app: app) {
            let module = try await TrainingModule.query(on: app.db).filter(\.$builtinKey == file.key).first() ?? TrainingModule()
            module.builtinKey = file.key
            module.title = file.title
            module.summary = file.summary
            module.category = file.category
            module.difficulty = file.difficulty
            module.estimatedMinutes = file.estimatedMinutes
            module.locale = "en"
            module.passMark = file.passMark
            module.maxAttempts = 3
            module.lessons = file.lessons.enumerated().map {
                Lesson(id: "\(file.key)-lesson-\($0 + 1)", title: $1.title, body: $1.body)
            }
            module.questions = file.questions.enumerated().map {
                Question(id: "\(file.key)-q\($0 + 1)", prompt: $1.prompt, kind: $1.kind, options: $1.options,
                         correct: $1.correct, explanation: $1.explanation)
            }
            if module.hasChanges || module.id == nil { try await module.save(on: app.db) }
        }
    }
}
