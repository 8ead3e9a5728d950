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
        for file in try BuiltinContent.load(File.self, folder: "phishing", app: app) {
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
