/// Swift writes UUIDs in capitals; identifiers go out lowercase, as RFC 9562 asks (they are accepted in any case).
/// `WireJSONWriter` writes every string value or key that is exactly a UUID in lowercase.
enum IdentifierCase {
    static func isUUID(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        guard bytes.count == 36 else { return false }
        for offset in 0..<36 {
            let byte = bytes[offset]
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
