import Foundation

/// Decodes request bodies so that every field of the wrong JSON type is reported at once, by its wire name.
/// JSONDecoder stops at the first problem; on failure the offending field is taken out of the document and decoding
/// is tried again, until the rest decodes. Only failing requests pay for the retries.
struct BodyDecoder {
    let style: KeyStyle
    /// Bounds on the work a failing body can cause: each retry decodes the body again.
    static let maxFieldErrors = 20
    static let maxUnplacedNumbers = 20

    func decode<T: Decodable>(_ type: T.Type, from data: Data) throws -> T {
        let decoder = style.decoder
        let firstError: DecodingError
        do {
            return try decoder.decode(T.self, from: data)
        } catch let error as DecodingError {
            firstError = error
        }
        guard let document = try? JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed]) else {
            throw APIError.badRequest("The request body is not valid JSON.")
        }
        guard var object = document as? [String: Any] else {
            throw APIError.badRequest("The request body must be a JSON object.")
        }
        var errors = FieldErrors()
        var pending: DecodingError? = firstError
        var seen = Set<String>()
        func retry() throws -> DecodingError? {
            do {
                _ = try decoder.decode(T.self, from: try JSONSerialization.data(withJSONObject: object))
                return nil
            } catch let next as DecodingError {
                return next
            }
        }
        while let error = pending, seen.count < Self.maxFieldErrors {
            if let problem = FieldProblem(error, style: style), !problem.path.isEmpty {
                guard seen.insert(problem.field).inserted else { break }
                errors.add(problem.field, problem.message)
                object = Self.removing(problem.path, from: object)
            } else {
                // Foundation reports a number that does not fit an integer field (1.5, 1e30) as "not valid JSON"
                // without a path. Among the numbers that are not whole Int64 values, the culprits are those that
                // fail on their own, with every other such number taken out.
                func stillUnplaced(_ document: [String: Any]) -> Bool {
                    guard let data = try? JSONSerialization.data(withJSONObject: document) else { return true }
                    do { _ = try decoder.decode(T.self, from: data); return false } catch let next as DecodingError {
                        return FieldProblem(next, style: style)?.path.isEmpty ?? true
                    } catch { return true }
                }
                let candidates = Self.numbers(notFittingIntegersIn: object)
                guard candidates.count <= Self.maxUnplacedNumbers else {
                    throw APIError.badRequest("The request body holds numbers that do not fit their fields.")
                }
                let culprits = candidates.filter { candidate in
                    stillUnplaced(candidates.filter { $0 != candidate }.reduce(object) { Self.removing($1, from: $0) })
                }
                guard !culprits.isEmpty else { break }
                for culprit in culprits {
                    let field = FieldProblem.fieldName(culprit)
                    if seen.insert(field).inserted { errors.add(field, "The \(field) must be a whole number within range.") }
                    object = Self.removing(culprit, from: object)
                }
            }
            pending = try retry()
        }
        try errors.throwIfAny()
        throw APIError.badRequest("The request body could not be read.")
    }

    /// The document without the value at `path` (wire names); an array element takes its whole array with it.
    private static func removing(_ path: [PathComponent], from object: [String: Any]) -> [String: Any] {
        guard case let .key(first)? = path.first else { return object }
        var copy = object
        if path.count > 1, case .key = path[1], let nested = object[first] as? [String: Any] {
            copy[first] = removing(Array(path.dropFirst()), from: nested)
        } else {
            copy.removeValue(forKey: first)
        }
        return copy
    }

    /// Paths (wire names) of the numbers in the document that are not whole numbers an Int64 holds.
    private static func numbers(notFittingIntegersIn object: [String: Any], prefix: [PathComponent] = []) -> [[PathComponent]] {
        guard prefix.count < 32 else { return [] }
        return object.keys.sorted().flatMap { key -> [[PathComponent]] in
            let path = prefix + [.key(key)]
            switch object[key] {
            case let nested as [String: Any]:
                return numbers(notFittingIntegersIn: nested, prefix: path)
            case let number as NSNumber:
                let value = number.doubleValue
                let fits = value.rounded() == value && abs(value) < 9.2e18
                return fits ? [] : [path]
            default:
                return []
            }
        }
    }

    enum PathComponent: Equatable {
        case key(String)
        case index(Int)
    }

    /// One decoding failure as a field and a message a person can act on.
    struct FieldProblem {
        let path: [PathComponent]
        let field: String
        let message: String

        init?(_ error: DecodingError, style: KeyStyle) {
            let codingPath: [any CodingKey]
            let message: (String) -> String
            switch error {
            case let .typeMismatch(expected, context):
                codingPath = context.codingPath
                message = { "The \($0) must be \(Self.describe(expected))." }
            case let .valueNotFound(expected, context):
                codingPath = context.codingPath
                message = { "The \($0) must be \(Self.describe(expected)), not null." }
            case let .keyNotFound(key, context):
                codingPath = context.codingPath + [key]
                message = { "The \($0) field is required." }
            case let .dataCorrupted(context):
                codingPath = context.codingPath
                let hint = context.debugDescription
                if hint.contains("ISO 8601") {
                    message = { "The \($0) must be an ISO 8601 date or time." }
                } else if hint.contains("UUID") {
                    message = { "The \($0) must be a valid identifier." }
                } else if hint.localizedCaseInsensitiveContains("fit") || hint.localizedCaseInsensitiveContains("number") {
                    message = { "The \($0) is out of range." }
                } else {
                    message = { "The \($0) is not valid." }
                }
            @unknown default:
                return nil
            }
            path = codingPath.map { key in
                if let index = key.intValue { return .index(index) }
                return .key(style.wireName(key.stringValue))
            }
            field = Self.fieldName(path)
            self.message = message(field)
        }

        static func fieldName(_ path: [PathComponent]) -> String {
            path.map { component in
                switch component {
                case let .key(name): name
                case let .index(index): String(index)
                }
            }.joined(separator: ".")
        }

        static func describe(_ type: Any.Type) -> String {
            switch type {
            case is String.Type, is Substring.Type: return "a string"
            case is Bool.Type: return "true or false"
            case is Int.Type, is Int64.Type, is Int32.Type, is UInt.Type: return "an integer"
            case is Double.Type, is Float.Type: return "a number"
            case is Date.Type: return "an ISO 8601 date or time"
            case is UUID.Type: return "a valid identifier"
            default:
                let name = String(describing: type)
                if name.hasPrefix("Array") || (name.hasPrefix("[") && !name.contains(":")) { return "a list" }
                return "an object"
            }
        }
    }
}

extension KeyStyle {
    /// The name a field has on the wire: snake_case families convert the Swift property name, camelCase ones keep it.
    func wireName(_ key: String) -> String {
        guard self == .snake else { return key }
        var result = ""
        let characters = Array(key)
        for (index, character) in characters.enumerated() {
            if character.isUppercase {
                let previous = index > 0 ? characters[index - 1] : nil
                let next = index + 1 < characters.count ? characters[index + 1] : nil
                if let previous, previous.isLowercase || previous.isNumber || (previous.isUppercase && next?.isLowercase == true) {
                    result.append("_")
                }
                result.append(contentsOf: character.lowercased())
            } else {
                result.append(character)
            }
        }
        return result
    }
}
