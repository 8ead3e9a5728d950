import Foundation

/// Collects every failing field of a request so a 422 lists them all at once.
struct FieldErrors: Sendable {
    private(set) var details: [String: [String]] = [:]

    var isEmpty: Bool { details.isEmpty }

    mutating func add(_ field: String, _ message: String) {
        details[field, default: []].append(message)
    }

    /// Where the checked values came from: a body answers 422 (400 in /api/v1), a query string 400 everywhere.
    enum Source { case body, query }

    func throwIfAny(from source: Source = .body) throws {
        guard !details.isEmpty else { return }
        throw source == .body ? APIError.validation(details) : APIError.invalidQuery(details)
    }

    /// Returns the trimmed value, recording an error when it is missing or empty.
    mutating func required(_ value: String?, field: String, maxLength: Int = 255) -> String? {
        guard let trimmed = value.map(Self.trimmed), !trimmed.isEmpty else {
            add(field, "The \(field) field is required.")
            return nil
        }
        return length(trimmed, field: field, maxLength: maxLength)
    }

    /// Returns the trimmed value or nil when absent; records an error when it is too long.
    mutating func optional(_ value: String?, field: String, maxLength: Int = 255) -> String? {
        guard let trimmed = value.map(Self.trimmed), !trimmed.isEmpty else { return nil }
        return length(trimmed, field: field, maxLength: maxLength)
    }

    /// Without whitespace and newlines at either end. Most values have none at an ASCII end, which is told from the
    /// bytes; only the others go through Foundation (an import checks a million rows of values).
    static func trimmed(_ value: String) -> String {
        let utf8 = value.utf8
        guard let first = utf8.first, let last = utf8.last else { return value }
        func plain(_ byte: UInt8) -> Bool { byte < 0x80 && byte != 0x20 && !(0x09...0x0D).contains(byte) }
        if plain(first), plain(last) { return value }
        return value.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private mutating func length(_ value: String, field: String, maxLength: Int) -> String? {
        // PostgreSQL refuses NUL in text and SQLite's full-text queries stop at it: a clear 4xx, not a 500.
        if value.utf8.contains(0) {
            add(field, "The \(field) may not contain a NUL character.")
            return nil
        }
        // A character is at least one byte: a value within the limit in bytes is within it in characters.
        if value.utf8.count > maxLength, value.count > maxLength {
            add(field, "The \(field) may not be greater than \(maxLength) characters.")
            return nil
        }
        return value
    }

    mutating func email(_ value: String?, field: String = "email", required isRequired: Bool = true) -> String? {
        let text = isRequired ? required(value, field: field) : optional(value, field: field)
        guard let text else { return nil }
        guard EmailAddress.isValid(text) else {
            add(field, "The \(field) must be a valid email address.")
            return nil
        }
        return text.lowercased()
    }

    mutating func password(_ value: String?, field: String = "password", required isRequired: Bool = true) -> String? {
        guard let value, !value.isEmpty else {
            if isRequired { add(field, "The \(field) field is required.") }
            return nil
        }
        if value.count < 8 { add(field, "The \(field) must be at least 8 characters."); return nil }
        if value.count > 128 { add(field, "The \(field) may not be greater than 128 characters."); return nil }
        return value
    }

    mutating func oneOf(_ value: String?, field: String, allowed: [String]) -> String? {
        guard let value else { return nil }
        guard allowed.contains(value) else {
            add(field, "The \(field) must be one of: \(allowed.joined(separator: ", ")).")
            return nil
        }
        return value
    }

    mutating func uuid(_ value: String?, field: String) -> UUID? {
        guard let value, !value.isEmpty else { return nil }
        guard let id = UUID(uuidString: value) else {
            add(field, "The \(field) must be a valid identifier.")
            return nil
        }
        return id
    }

    mutating func integer(_ value: String?, field: String, min: Int? = nil, max: Int? = nil) -> Int? {
        guard let value, !value.isEmpty else { return nil }
        guard let number = Int(value) else {
            add(field, "The \(field) must be an integer.")
            return nil
        }
        return range(number, field: field, min: min, max: max)
    }

    mutating func range(_ number: Int?, field: String, min: Int? = nil, max: Int? = nil) -> Int? {
        guard let number else { return nil }
        if let min, number < min { add(field, "The \(field) must be at least \(min)."); return nil }
        if let max, number > max { add(field, "The \(field) may not be greater than \(max)."); return nil }
        return number
    }

    mutating func date(_ value: String?, field: String) -> Date? {
        guard let value, !value.isEmpty else { return nil }
        guard let date = ISO8601.parse(value) else {
            add(field, "The \(field) must be an ISO 8601 date or time.")
            return nil
        }
        return date
    }
}

enum EmailAddress {
    /// One "@" after a non-empty local part, a domain with an inner dot, no whitespace, at most 254 characters. Read
    /// as scalars: a whitespace scalar always begins a character of its own, so this is the character-wise test.
    static func isValid(_ text: String) -> Bool {
        let scalars = text.unicodeScalars
        guard let at = scalars.firstIndex(of: "@"), at != scalars.startIndex else { return false }
        let domain = scalars[scalars.index(after: at)...]
        guard !domain.contains("@"), domain.contains("."), domain.first != ".", domain.last != ".",
              !scalars.contains(where: isWhitespace) else { return false }
        return text.utf8.count <= 254 || text.count <= 254
    }

    /// Unicode's White_Space, answered for ASCII without the property tables (a tenth of an import's parsing time).
    private static func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        scalar.isASCII ? scalar == " " || (0x09...0x0D).contains(scalar.value) : scalar.properties.isWhitespace
    }
}
