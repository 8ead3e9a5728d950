@testable import BulwarkApp
import Foundation
import Testing

/// `WireJSON` writes what Foundation's `JSONEncoder`, configured as responses were before, wrote for the same values:
/// compared after parsing (key order differs), plus the number and escaping text itself.
@Suite struct WireJSONTests {
    /// Foundation's encoder as every response used it (the reference).
    static func reference<T: Encodable>(_ value: T, style: KeyStyle) throws -> String {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(ISO8601.string(date))
        }
        encoder.outputFormatting = [.withoutEscapingSlashes]
        if style == .snake {
            encoder.keyEncodingStrategy = .custom { path in
                let last = path[path.count - 1]
                return last.intValue != nil ? last : WireEncoder.Key(SnakeCaseKeys.name(for: last.stringValue))
            }
        }
        let text = String(decoding: try encoder.encode(value), as: UTF8.self)
        return try canonical(Array(lowercasingUUIDs(text).utf8))
    }

    /// Uppercase UUID strings lowercased, as responses always had them.
    private static func lowercasingUUIDs(_ text: String) -> String {
        let pattern = try! NSRegularExpression(pattern: "\"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\"")
        var result = text
        for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)).reversed() {
            let range = Range(match.range, in: text)!
            result.replaceSubrange(range, with: text[range].lowercased())
        }
        return result
    }

    /// Parsed and written again with sorted keys; fails the test when the bytes are not JSON.
    static func canonical(_ bytes: [UInt8]) throws -> String {
        let object = try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
        return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .fragmentsAllowed]), as: UTF8.self)
    }

    struct Person: Encodable {
        var id = UUID(uuidString: "5E0F7A1C-2B3D-4C5E-8F90-A1B2C3D4E5F6")!
        var firstName = "Ada"
        @Nullable var completedAt: Date? = nil
        @Nullable var bestScore: Int? = 87
        var lastLoginAt: Date? = nil
        var createdAt = Date(timeIntervalSince1970: 1_700_000_000)
        var verifyURL = URL(string: "https://bulwark.test/verify/ABC?x=1")!
        var ratio = 2.5
        var whole = 3.0
        var big = 1e20
        var negative = -42
        var unsigned: UInt8 = 255
        var tiny: Float = 0.25
        var flags = [true, false]
        var maybe: [Int?] = [1, nil, 3]
        var blob = Data([0, 1, 2, 250])
        var details: [String: JSONValue] = ["oldValue": .string("x"), "nestedThing": .object(["innerKey": .array([.number(1), .null, .bool(true)])])]
        var text = "quote \" back \\ slash / newline \n tab \t bell \u{07} del \u{7F} é 🛡️ \u{2028}"
        var upperID = "0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8F9"
        var notID = "0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8FZ"
        var empty: [String] = []
        var emptyObject: [String: Int] = [:]
        var nothing = Nothing()
    }

    struct Nothing: Encodable {}

    /// A detail that writes its summary's keys, then its own, into one object (as `ModuleDetail` does).
    struct Detail: Encodable {
        let summary = Person()
        let lessonCount = 4
        enum CodingKeys: String, CodingKey { case lessonCount }
        func encode(to encoder: any Encoder) throws {
            try summary.encode(to: encoder)
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(lessonCount, forKey: .lessonCount)
        }
    }

    /// Nested containers asked for explicitly, left to be closed by the next key.
    struct Nested: Encodable {
        enum Keys: String, CodingKey { case outerList, innerObject, afterwards }
        enum Inner: String, CodingKey { case deepKey }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Keys.self)
            var list = container.nestedUnkeyedContainer(forKey: .outerList)
            try list.encode(1)
            var object = list.nestedContainer(keyedBy: Inner.self)
            try object.encode("v", forKey: .deepKey)
            try list.encode("after")
            var inner = container.nestedContainer(keyedBy: Inner.self, forKey: .innerObject)
            try inner.encode(Date(timeIntervalSince1970: 0), forKey: .deepKey)
            try container.encode([[1, 2], []], forKey: .afterwards)
        }
    }

    /// Super encoders, as Fluent models use them for each property; one left unused reads as an empty object.
    struct WithSupers: Encodable {
        enum Keys: String, CodingKey { case base, unused, after, list }
        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Keys.self)
            var base = container.superEncoder(forKey: .base).singleValueContainer()
            try base.encode("b")
            _ = container.superEncoder(forKey: .unused)
            _ = container.superEncoder()
            try container.encode(1, forKey: .after)
            var list = container.nestedUnkeyedContainer(forKey: .list)
            _ = list.superEncoder()
        }
    }

    @Test(arguments: [KeyStyle.snake, .camel])
    func responsesMatchFoundationsEncoder(style: KeyStyle) throws {
        let wire = WireJSON(style: style)
        let people = [Person(), Person()]
        #expect(try Self.canonical(wire.encode(Envelope(data: people, pagination: PaginationMeta(page: 2, perPage: 15, total: 40))))
                == Self.reference(Envelope(data: people, pagination: PaginationMeta(page: 2, perPage: 15, total: 40)), style: style))
        #expect(try Self.canonical(wire.encode(Detail())) == Self.reference(Detail(), style: style))
        #expect(try Self.canonical(wire.encode(Nested())) == Self.reference(Nested(), style: style))
        let supers = (try Self.canonical(wire.encode(WithSupers())), try Self.reference(WithSupers(), style: style))
        #expect(supers.0 == supers.1, "\(supers.0) against \(supers.1)")
        #expect(try Self.canonical(wire.encode(MessageEnvelope(message: "done"))) == Self.reference(MessageEnvelope(message: "done"), style: style))
        #expect(try Self.canonical(wire.encode(["plainKey": 1])) == Self.reference(["plainKey": 1], style: style))
        #expect(try Self.canonical(wire.encode("top")) == Self.reference("top", style: style))
    }

    @Test func numbersAndEscapesAreWrittenAsFoundationWrites() throws {
        let text = String(decoding: try WireJSON(style: .snake).encode(Person()), as: UTF8.self)
        for expected in ["\"ratio\":2.5", "\"whole\":3,", "\"negative\":-42", "\"unsigned\":255", "\"tiny\":0.25",
                         "\"maybe\":[1,null,3]", "\"completed_at\":null", "\"best_score\":87", "\"nothing\":{}",
                         "\"upper_id\":\"0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9\"", "\"not_id\":\"0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8FZ\"",
                         "\\\"", "\\\\", " / ", "\\n", "\\t", "\\u0007", "é 🛡️", "\"empty\":[]", "\"empty_object\":{}"] {
            #expect(text.contains(expected), "\(expected) in \(text)")
        }
        #expect(!text.contains("last_login_at"), "an absent optional is left out")
        #expect(throws: EncodingError.self) { try WireJSON(style: .snake).encode(["x": Double.nan]) }
    }
}
