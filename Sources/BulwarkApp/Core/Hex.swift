import Foundation
import NIOConcurrencyHelpers
import SQLKit

/// Lowercase hexadecimal of bytes (digests, tokens). `String(format: "%02x")` per byte built a formatter each time
/// and was a tenth of every authenticated request's CPU.
extension Sequence where Element == UInt8 {
    var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(underestimatedCount * 2)
        for byte in self {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension Array where Element == UInt8 {
    /// The decimal digits of `value` (a minus sign first when it is negative), at least `minimumDigits` of them with
    /// zeros in front: JSON numbers, CSV cells and timestamps are written into bytes without a string each.
    mutating func appendDecimal<I: BinaryInteger>(_ value: I, minimumDigits: Int = 1) {
        if value < 0 { append(UInt8(ascii: "-")) }
        let start = count
        var magnitude = value.magnitude
        repeat {
            append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: magnitude % 10))
            magnitude /= 10
        } while magnitude > 0
        while count - start < minimumDigits { append(UInt8(ascii: "0")) }
        self[start...].reverse()
    }
}

extension UUID {
    /// `uuidString.lowercased()`, the form every response uses, without `uuid_unparse`'s printf.
    var lowercasedString: String {
        String(unsafeUninitializedCapacity: 36) { write(into: $0, digits: "0123456789abcdef") }
    }

    /// `uuidString` (Fluent's form on SQLite) without `uuid_unparse`'s printf: a tenth of the tracking flusher's
    /// Swift time went to it.
    var uppercasedString: String {
        String(unsafeUninitializedCapacity: 36) { write(into: $0, digits: "0123456789ABCDEF") }
    }

    /// The same 36 characters appended to `bytes` (an export's line).
    func appendLowercased(to bytes: inout [UInt8]) {
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: 36))
        bytes.withUnsafeMutableBufferPointer {
            _ = write(into: UnsafeMutableBufferPointer(rebasing: $0[start...]), digits: "0123456789abcdef")
        }
    }

    private func write(into text: UnsafeMutableBufferPointer<UInt8>, digits: StaticString) -> Int {
        withUnsafeBytes(of: uuid) { bytes in
            var position = 0
            for (index, byte) in bytes.enumerated() {
                if index == 4 || index == 6 || index == 8 || index == 10 {
                    text[position] = UInt8(ascii: "-")
                    position += 1
                }
                text[position] = digits.utf8Start[Int(byte >> 4)]
                text[position + 1] = digits.utf8Start[Int(byte & 0x0f)]
                position += 2
            }
            return position
        }
    }
}

extension UUID {
    /// Parses the 36-character form in either case; `UUID(uuidString:)` goes through `sscanf`, a tenth of an export.
    init?(hexText text: String) {
        var value: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let parsed = withUnsafeMutableBytes(of: &value) { bytes -> Bool in
            var count = 0
            var high: UInt8?
            var position = 0
            for char in text.utf8 {
                defer { position += 1 }
                guard position < 36 else { return false }
                if position == 8 || position == 13 || position == 18 || position == 23 {
                    guard char == UInt8(ascii: "-") else { return false }
                    continue
                }
                let nibble: UInt8
                switch char {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): nibble = char - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): nibble = char - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): nibble = char - UInt8(ascii: "A") + 10
                default: return false
                }
                if let first = high {
                    bytes[count] = first << 4 | nibble
                    count += 1
                    high = nil
                } else {
                    high = nibble
                }
            }
            return position == 36 && count == 16
        }
        guard parsed else { return nil }
        self.init(uuid: value)
    }
}

extension SQLRow {
    /// A UUID column, parsed without `sscanf` where the database hands it over as text (SQLite).
    func decodeUUID(column: String) throws -> UUID {
        if let text = try? decode(column: column, as: String.self), let id = UUID(hexText: text) { return id }
        return try decode(column: column, as: UUID.self)
    }
}

extension UUID {
    /// Byte order, the order PostgreSQL sorts `uuid` and SQLite sorts the text form in; compares without building
    /// strings (a lock-order sort of a batch otherwise allocated two strings per comparison).
    static func byteOrder(_ lhs: UUID, _ rhs: UUID) -> Bool {
        withUnsafeBytes(of: lhs.uuid) { left in
            withUnsafeBytes(of: rhs.uuid) { right in left.lexicographicallyPrecedes(right) }
        }
    }

    /// A version 7 UUID (RFC 9562) for a given time: the first 48 bits are the Unix time in milliseconds, the rest
    /// random (tracking events are keyed by the time they happened).
    static func timeOrdered(at date: Date) -> UUID {
        version7(milliseconds: UInt64(max(0, date.timeIntervalSince1970 * 1000)), counter: nil)
    }

    /// A version 7 UUID that sorts after every one this process made before (RFC 9562 §6.2, method 1: a 12-bit counter
    /// after the milliseconds). Rows of append-mostly tables keyed by it land at the right edge of the id index, and
    /// rows written in one order (an import, an enrolment walk) are read back in that order by id: an export joining
    /// them then reads neighbouring pages instead of one random page per row. Ids made in the same millisecond keep
    /// their order through the counter; when it runs out the clock is borrowed from the next millisecond.
    static func timeOrdered() -> UUID {
        let now = UInt64(max(0, Date().timeIntervalSince1970 * 1000))
        let (milliseconds, counter) = monotonicClock.withLockedValue { state -> (UInt64, UInt16) in
            if now > state.milliseconds {
                // A random start leaves room for at least 2,048 more ids in this millisecond.
                state = (now, UInt16.random(in: 0..<0x800))
            } else if state.counter < 0xFFF {
                state.counter += 1
            } else {
                state = (state.milliseconds + 1, 0)
            }
            return state
        }
        return version7(milliseconds: milliseconds, counter: counter)
    }

    private static let monotonicClock = NIOLockedValueBox<(milliseconds: UInt64, counter: UInt16)>((0, 0))

    /// A version 4 (random) UUID from getrandom(2), for ids made in bulk (a launch's simulations, each sent message's
    /// Message-ID): `UUID()` opens `/dev/urandom` for each one on Linux.
    static func random() -> UUID {
        var random = SystemRandomNumberGenerator()
        var bytes = (random.next() as UInt64, random.next() as UInt64)
        return withUnsafeMutableBytes(of: &bytes) { raw in
            raw[6] = 0x40 | (raw[6] & 0x0f)
            raw[8] = 0x80 | (raw[8] & 0x3f)
            return UUID(uuid: raw.load(as: uuid_t.self))
        }
    }

    /// The random bits come from `SystemRandomNumberGenerator` (getrandom(2)): Foundation's `UUID()` opens and reads
    /// `/dev/urandom` for each id on Linux, which was a sixth of the importer's event-loop time.
    private static func version7(milliseconds: UInt64, counter: UInt16?) -> UUID {
        var random = SystemRandomNumberGenerator()
        let high: UInt64 = random.next(), low: UInt64 = random.next()
        func byte(_ word: UInt64, _ index: Int) -> UInt8 { UInt8(truncatingIfNeeded: word >> (8 * (7 - index))) }
        func time(_ index: Int) -> UInt8 { UInt8(truncatingIfNeeded: milliseconds >> (8 * (5 - index))) }
        let (versionHigh, versionLow): (UInt8, UInt8) = counter.map { (0x70 | UInt8($0 >> 8), UInt8(truncatingIfNeeded: $0)) }
            ?? (0x70 | (byte(high, 6) & 0x0f), byte(high, 7))
        return UUID(uuid: (time(0), time(1), time(2), time(3), time(4), time(5), versionHigh, versionLow,
                           0x80 | (byte(low, 0) & 0x3f), byte(low, 1), byte(low, 2), byte(low, 3),
                           byte(low, 4), byte(low, 5), byte(low, 6), byte(low, 7)))
    }
}
