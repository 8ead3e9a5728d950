import Foundation

/// The JSON of every response body: an `Encoder` that writes bytes as values arrive. Foundation's `JSONEncoder` builds a
/// tree of boxed values first and looks up generic metadata for each; it was a quarter of the CPU of a page of people.
///
/// It writes what `KeyStyle.encoder` wrote (a test compares the two on the shapes responses use): keys in the family's
/// style (snake case converted as Foundation converts, dictionary keys as they are), dates as `ISO8601.string`, slashes
/// unescaped, data as base64, URLs as their absolute string, and every string that is exactly a UUID in lowercase (RFC
/// 9562). Keys come out in the order a type encodes them.
struct WireJSON {
    let style: KeyStyle

    func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        let writer = WireJSONWriter(snakeCase: style == .snake)
        // The open containers name their encoders, which hold the writer: emptied on every path, so none outlives this.
        defer { writer.abandon() }
        try writer.value(value, parent: nil, key: nil)
        writer.close(downTo: 0)
        return writer.bytes
    }
}

final class WireJSONWriter {
    // Unchecked: one writer serves one encode on one thread, and the checks were a tenth of writing a small body.
    @exclusivity(unchecked) var bytes: [UInt8] = []
    let snakeCase: Bool
    /// The closing byte of each container still open, innermost last. A container closes when something is written
    /// at its parent's level or its encoder finishes, so nested containers need no explicit end.
    @exclusivity(unchecked) private var closers: [(byte: UInt8, owner: WireEncoder?)] = []

    init(snakeCase: Bool) {
        self.snakeCase = snakeCase
        bytes.reserveCapacity(2048)
    }

    var depth: Int { closers.count }

    func open(_ byte: UInt8, closer: UInt8, owner: WireEncoder?) {
        bytes.append(byte)
        closers.append((closer, owner))
    }

    func abandon() {
        for open in closers { open.owner?.settleHandedOut() }
        closers.removeAll()
    }

    func close(downTo depth: Int) {
        while closers.count > depth {
            let open = closers.removeLast()
            open.owner?.settleHandedOut()
            bytes.append(open.byte)
        }
    }

    /// One value of any type; the types Foundation special-cases are matched by metatype first (cheaper than a cast).
    func value<T: Encodable>(_ value: T, parent: WireEncoder?, key: (any CodingKey)?) throws {
        if T.self == String.self { string(value as! String) }
        else if T.self == UUID.self { uuid(value as! UUID) }
        else if T.self == Int.self { integer(value as! Int) }
        else if T.self == Bool.self { bool(value as! Bool) }
        else if T.self == Date.self { string(ISO8601.string(value as! Date)) }
        else if T.self == Double.self { try number(value as! Double, path: parent, key: key) }
        else if T.self == URL.self { string((value as! URL).absoluteString) }
        else if T.self == Data.self { string((value as! Data).base64EncodedString()) }
        else if T.self == Decimal.self { bytes.append(contentsOf: (value as! Decimal).description.utf8) }
        else if let dictionary = value as? any StringKeyedDictionary { try dictionary.write(to: self, parent: parent, key: key) }
        else {
            let encoder = WireEncoder(writer: self, parent: parent, key: key)
            try value.encode(to: encoder)
            encoder.finish()
        }
    }

    static let trueBytes = Array("true".utf8)
    static let falseBytes = Array("false".utf8)
    static let nullBytes = Array("null".utf8)

    func null() { bytes.append(contentsOf: Self.nullBytes) }

    func bool(_ value: Bool) { bytes.append(contentsOf: value ? Self.trueBytes : Self.falseBytes) }

    func integer<I: BinaryInteger>(_ value: I) { bytes.appendDecimal(value) }

    /// Finite numbers only, as JSON allows; a whole number loses its ".0", as Foundation writes it.
    func number<F: BinaryFloatingPoint & LosslessStringConvertible>(_ value: F, path: WireEncoder?, key: (any CodingKey)?) throws {
        guard value.isFinite else {
            let codingPath = (path?.codingPath ?? []) + (key.map { [$0] } ?? [])
            throw EncodingError.invalidValue(value, .init(codingPath: codingPath, debugDescription: "\(value) is not valid in JSON."))
        }
        var text = value.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        bytes.append(contentsOf: text.utf8)
    }

    func uuid(_ id: UUID) {
        bytes.append(UInt8(ascii: "\""))
        bytes.append(contentsOf: id.lowercasedString.utf8)
        bytes.append(UInt8(ascii: "\""))
    }

    func string(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { utf8 in
            if utf8.count == 36, IdentifierCase.isUUID(utf8) {
                for byte in utf8 { bytes.append(byte >= 0x41 && byte <= 0x46 ? byte + 0x20 : byte) }
                return
            }
            var start = 0
            for (index, byte) in utf8.enumerated() where byte < 0x20 || byte == 0x22 || byte == 0x5C {
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<index]))
                escape(byte)
                start = index + 1
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<utf8.count]))
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private func escape(_ byte: UInt8) {
        bytes.append(UInt8(ascii: "\\"))
        switch byte {
        case 0x22: bytes.append(0x22)
        case 0x5C: bytes.append(0x5C)
        case 0x08: bytes.append(UInt8(ascii: "b"))
        case 0x0C: bytes.append(UInt8(ascii: "f"))
        case 0x0A: bytes.append(UInt8(ascii: "n"))
        case 0x0D: bytes.append(UInt8(ascii: "r"))
        case 0x09: bytes.append(UInt8(ascii: "t"))
        default:
            let hex = Array("0123456789abcdef".utf8)
            bytes.append(contentsOf: Array("u00".utf8))
            bytes.append(hex[Int(byte >> 4)])
            bytes.append(hex[Int(byte & 0x0F)])
        }
    }

    /// A key of a type's own container, in the family's style.
    func key(_ name: String) {
        string(snakeCase ? SnakeCaseKeys.name(for: name) : name)
        bytes.append(UInt8(ascii: ":"))
    }
}

/// `[String: Value]` keeps its keys as they are (Foundation applies the key strategy only to a type's coding keys).
protocol StringKeyedDictionary {
    func write(to writer: WireJSONWriter, parent: WireEncoder?, key: (any CodingKey)?) throws
}

extension Dictionary: StringKeyedDictionary where Key == String, Value: Encodable {
    func write(to writer: WireJSONWriter, parent: WireEncoder?, key: (any CodingKey)?) throws {
        let encoder = WireEncoder(writer: writer, parent: parent, key: key)
        writer.open(UInt8(ascii: "{"), closer: UInt8(ascii: "}"), owner: nil)
        var first = true
        for (name, value) in self {
            if !first { writer.bytes.append(UInt8(ascii: ",")) }
            first = false
            writer.string(name)
            writer.bytes.append(UInt8(ascii: ":"))
            try writer.value(value, parent: encoder, key: WireEncoder.Key(name))
            writer.close(downTo: encoder.baseDepth + 1)
        }
        writer.close(downTo: encoder.baseDepth)
    }
}
