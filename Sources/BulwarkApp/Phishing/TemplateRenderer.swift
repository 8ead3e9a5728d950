import Foundation
import Mustache
import NIOConcurrencyHelpers

/// Renders customer-written email and landing templates with Mustache: logic-less, so a template can never run code.
enum TemplateRenderer {
    static let variables = ["first_name", "last_name", "email", "position", "department", "url", "tracking_pixel", "from"]

    struct InvalidTemplate: Error {
        let field: String
        let line: Int
        let column: Int
        let reason: String
        var message: String { "Invalid template at line \(line), column \(column): \(reason)." }
    }

    /// `{{tracking_pixel}}` is HTML, so it is rendered unescaped whichever way the author wrote it.
    private static func prepare(_ text: String) -> String {
        text.replacingOccurrences(of: "{{{tracking_pixel}}}", with: "{{tracking_pixel}}")
            .replacingOccurrences(of: "{{tracking_pixel}}", with: "{{{tracking_pixel}}}")
    }

    static func compile(_ text: String, field: String) throws -> MustacheTemplate {
        do {
            return try MustacheTemplate(string: prepare(text))
        } catch let error as MustacheTemplate.ParserError {
            throw InvalidTemplate(field: field, line: error.context.lineNumber, column: error.context.columnNumber,
                                  reason: String(describing: error.error))
        }
    }

    struct Person: Sendable {
        var firstName: String
        var lastName: String
        var email: String
        var position: String?
        var department: String?

        static let sample = Person(firstName: "Alex", lastName: "Sample", email: "alex.sample@example.com",
                                   position: "Analyst", department: "Finance")
    }

    static func context(person: Person, url: String, pixelURL: String?, from: String) -> [String: Any] {
        [
            "first_name": person.firstName, "last_name": person.lastName, "email": person.email,
            "position": person.position ?? "", "department": person.department ?? "", "url": url,
            "tracking_pixel": pixelURL.map { "<img src=\"\($0)\" width=\"1\" height=\"1\" alt=\"\" style=\"display:none\">" } ?? "",
            "from": from,
        ]
    }

    static func render(_ text: String, field: String, context: [String: Any]) throws -> String {
        try compiled(text, field: field).render(context)
    }

    /// Parsed templates by their text: a campaign renders the same four templates for every recipient, and parsing
    /// them was a fifth of the sender's CPU. Bounded by the text it holds; emptied when full (templates are few).
    private static let parsed = NIOLockedValueBox<(templates: [String: MustacheTemplate], characters: Int)>(([:], 0))
    private static let parsedCharacterLimit = 4_000_000

    private static func compiled(_ text: String, field: String) throws -> MustacheTemplate {
        if let template = parsed.withLockedValue({ $0.templates[text] }) { return template }
        let template = try compile(text, field: field)
        parsed.withLockedValue { cache in
            if cache.characters + text.utf8.count > parsedCharacterLimit { cache = ([:], 0) }
            guard text.utf8.count <= parsedCharacterLimit else { return }
            cache.templates[text] = template
            cache.characters += text.utf8.count
        }
        return template
    }
}
