import NIOConcurrencyHelpers
import Vapor

/// JSON key style of a route family: snake_case for /api/v1, /api/v3, /api/v4; camelCase for the tabletop family.
enum KeyStyle: Sendable {
    case snake, camel

    var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = ISO8601.parse(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an ISO 8601 time")
            }
            return date
        }
        if self == .snake { decoder.keyDecodingStrategy = .convertFromSnakeCase }
        return decoder
    }
}

/// `.convertToSnakeCase`, converting each distinct key once instead of on every encode.
enum SnakeCaseKeys {
    private static let converted = NIOLockedValueBox([String: String]())

    /// The snake-case form of a key name (cached: the names are the DTOs' fields, a bounded set).
    static func name(for name: String) -> String {
        if let known = converted.withLockedValue({ $0[name] }) { return known }
        let snake = convert(name)
        converted.withLockedValue { cache in if cache.count < 10_000 { cache[name] = snake } }
        return snake
    }

    /// Foundation's own conversion ("myURLProperty" → "my_url_property"), asked once per distinct key.
    static func convert(_ key: String) -> String {
        struct OneKey: Encodable {
            let name: String
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: WireEncoder.Key.self)
                try container.encode(0, forKey: WireEncoder.Key(name))
            }
        }
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        guard let data = try? encoder.encode(OneKey(name: key)),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Int],
              let converted = object.keys.first else { return key }
        return converted
    }
}

enum ISO8601 {
    /// Accepts full timestamps with or without fractional seconds, and plain dates (midnight UTC).
    static func parse(_ text: String) -> Date? {
        let plain = ISO8601DateFormatter()
        if let date = plain.date(from: text) { return date }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = fractional.date(from: text) { return date }
        let day = ISO8601DateFormatter()
        day.formatOptions = [.withFullDate]
        return day.date(from: text)
    }

    /// `2026-12-06T06:30:00Z`, as `ISO8601DateFormatter` writes it, without building an ICU formatter per call (which
    /// cost more than the rest of an export row).
    static func string(_ date: Date) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(20)
        append(date, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The same text appended to `bytes` (an export's line).
    static func append(_ date: Date, to bytes: inout [UInt8]) {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func digits(_ value: Int32, width: Int) { bytes.appendDecimal(max(value, 0), minimumDigits: width) }
        digits(parts.tm_year + 1900, width: 4)
        bytes.append(UInt8(ascii: "-"))
        digits(parts.tm_mon + 1, width: 2)
        bytes.append(UInt8(ascii: "-"))
        digits(parts.tm_mday, width: 2)
        bytes.append(UInt8(ascii: "T"))
        digits(parts.tm_hour, width: 2)
        bytes.append(UInt8(ascii: ":"))
        digits(parts.tm_min, width: 2)
        bytes.append(UInt8(ascii: ":"))
        digits(parts.tm_sec, width: 2)
        bytes.append(UInt8(ascii: "Z"))
    }
}
