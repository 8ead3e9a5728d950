import Fluent
import Vapor

/// Loads the built-in phishing templates from Resources/Content/phishing/*.json at start.
enum PhishingTemplateLibrary {
    struct File: Decodable {
        let key, name, category, difficulty, subject, senderName, senderEmail, html, text, landingHtml: String
        let landingFields: [String]
        let redFlags: [String]
    }

    static func sync(_ app: Application) async throws {
        let directory = app.directory.workingDirectory + "Resources/Content/phishing/"
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
        for name in names {
            let file = try decoder.decode(File.self, from: Data(contentsOf: URL(fileURLWithPath: directory + name)))
            let template = try await PhishingTemplate.query(on: app.db).filter(\.$builtinKey == file.key).first() ?? PhishingTemplate()
            template.builtinKey = file.key
            template.name = file.name
            template.category = file.category
            template.difficulty = file.difficulty
            template.locale = "en"
            template.subject = file.subject
            template.senderName = file.senderName
            template.senderEmail = file.senderEmail
            template.html = file.html
            template.text = file.text
            template.landingHTML = file.landingHtml
            template.landingFields = file.landingFields
            template.redFlags = file.redFlags
            try await template.save(on: app.db)
        }
    }
}
