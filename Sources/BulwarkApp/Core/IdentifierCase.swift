import Foundation

/// Swift writes UUIDs in capitals; identifiers go out lowercase, as RFC 9562 asks (they are accepted in any case).
/// JSONEncoder has no strategy for UUIDs, so encoded JSON passes through here: every string value that is exactly a
/// UUID is lowercased, in one pass over the bytes.
enum IdentifierCase {
    static func lowercased(_ json: Data) -> Data {
        var bytes = [UInt8](json)
        let count = bytes.count
        var index = 0
        while index + 37 < count {
            if bytes[index] == quote, bytes[index + 37] == quote, isUUID(bytes, from: index + 1) {
                for offset in (index + 1)...(index + 36) where bytes[offset] >= 0x41 && bytes[offset] <= 0x46 {
                    bytes[offset] += 0x20
                }
                index += 38
            } else {
                index += 1
            }
        }
        return Data(bytes)
    }

    private static let quote = UInt8(ascii: "\"")

    private static func isUUID(_ bytes: [UInt8], from start: Int) -> Bool {
        for offset in 0..<36 {
            let byte = bytes[start + offset]
            switch offset {
            case 8, 13, 18, 23:
                if byte != UInt8(ascii: "-") { return false }
            default:
                let isHex = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x46) || (byte >= 0x61 && byte <= 0x66)
                if !isHex { return false }
            }
        }
        return true
    }
}
