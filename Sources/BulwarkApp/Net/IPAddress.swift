import NIOCore

/// An IPv4 or IPv6 address as 16 bytes (IPv4 stored as IPv4-mapped ::ffff:a.b.c.d) with parse/format.
///
/// IPv4 and IPv4-mapped IPv6 share one representation on purpose: "127.0.0.1" and
/// "::ffff:127.0.0.1" reach the same host, so policy checks must not be able to tell them apart.
/// Consequently `description` always prints such addresses as a dotted quad ("127.0.0.1").
///
/// Parsing is hand-written (not inet_pton) so behaviour is identical on every platform and
/// deliberately strict: anything ambiguous is rejected rather than guessed at.
struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// Bytes 0–7 and 8–15, big-endian, so prefix masking is two integer ANDs.
    let high: UInt64
    let low: UInt64

    init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// An IPv4 address from its 32-bit big-endian value, stored IPv4-mapped.
    init(ipv4 value: UInt32) {
        self.init(high: 0, low: 0xffff_0000_0000 | UInt64(value))
    }

    /// Accepts "10.0.0.1", "::1", "fe80::1%eth0" (zone id dropped), "[::1]", "::ffff:127.0.0.1".
    init?(_ text: String) {
        // Work on bytes: only ASCII is valid, and this keeps Unicode digits etc. out.
        var bytes = Array(text.utf8)
        // Brackets are how URLs and headers wrap IPv6 literals; never valid around IPv4.
        if bytes.first == .openBracket {
            guard bytes.count > 2, bytes.last == .closeBracket else { return nil }
            bytes = Array(bytes[1..<(bytes.count - 1)])
            guard bytes.contains(.colon) else { return nil }
        }
        // A zone id names a local interface; it is not part of the address, so drop it.
        if let percent = bytes.firstIndex(of: .percent) {
            let zone = bytes[(percent + 1)...]
            guard bytes.contains(.colon), !zone.isEmpty, zone.allSatisfy(Self.isZoneByte) else { return nil }
            bytes = Array(bytes[..<percent])
        }
        if bytes.contains(.colon) {
            guard let groups = Self.parseIPv6(bytes) else { return nil }
            let high = groups[0..<4].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
            let low = groups[4..<8].reduce(UInt64(0)) { $0 << 16 | UInt64($1) }
            self.init(high: high, low: low)
        } else {
            guard let value = Self.parseIPv4(bytes[...]) else { return nil }
            self.init(ipv4: value)
        }
    }

    /// True for IPv4 and IPv4-mapped IPv6 (the same thing here).
    var isIPv4: Bool { high == 0 && low >> 32 == 0xffff }

    /// The 32-bit IPv4 value, or nil for a genuine IPv6 address.
    var ipv4Value: UInt32? { isIPv4 ? UInt32(truncatingIfNeeded: low) : nil }

    /// The eight 16-bit groups, most significant first.
    var groups: [UInt16] {
        (0..<8).map { index in
            let word = index < 4 ? high : low
            return UInt16(truncatingIfNeeded: word >> (48 - 16 * UInt64(index % 4)))
        }
    }

    /// Dotted quad for IPv4 (and mapped); RFC 5952 for IPv6: lowercase, no leading zeros,
    /// the longest run (first on ties) of two or more zero groups compressed to "::".
    var description: String {
        if let value = ipv4Value { return Self.formatIPv4(value) }
        let groups = self.groups
        var bestStart = 0, bestLength = 0, index = 0
        while index < 8 {
            guard groups[index] == 0 else { index += 1; continue }
            var end = index
            while end < 8, groups[end] == 0 { end += 1 }
            if end - index > bestLength { bestStart = index; bestLength = end - index }
            index = end
        }
        let hex = { (slice: ArraySlice<UInt16>) in slice.map { String($0, radix: 16) }.joined(separator: ":") }
        // RFC 5952 §4.2.2: a single zero group is never compressed.
        guard bestLength >= 2 else { return hex(groups[...]) }
        return hex(groups[..<bestStart]) + "::" + hex(groups[(bestStart + bestLength)...])
    }

    static func formatIPv4(_ value: UInt32) -> String {
        "\((value >> 24) & 0xff).\((value >> 16) & 0xff).\((value >> 8) & 0xff).\(value & 0xff)"
    }

    /// A socket's address, from its bytes (no text round trip); nil for a Unix domain socket.
    init?(_ socket: SocketAddress) {
        switch socket {
        case let .v4(address):
            self.init(ipv4: UInt32(bigEndian: address.address.sin_addr.s_addr))
        case let .v6(address):
            let (high, low) = withUnsafeBytes(of: address.address.sin6_addr) { bytes in
                (bytes.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }, bytes.suffix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
            }
            self.init(high: high, low: low)
        case .unixDomainSocket:
            return nil
        }
    }

    // MARK: - Parsing

    /// Exactly four decimal octets 0–255. Leading zeros are rejected because some stacks
    /// read "010" as octal (8), so accepting it would let a check and a connect disagree.
    private static func parseIPv4(_ bytes: ArraySlice<UInt8>) -> UInt32? {
        let parts = bytes.split(separator: .dot, omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy(isDigit) else { return nil }
            guard part.count == 1 || part.first != .digitZero else { return nil }
            let octet = part.reduce(UInt32(0)) { $0 * 10 + UInt32($1 - .digitZero) }
            guard octet <= 255 else { return nil }
            value = value << 8 | octet
        }
        return value
    }

    /// Eight 16-bit groups from hex groups with at most one "::" and an optional trailing
    /// dotted quad (which supplies the last two groups).
    private static func parseIPv6(_ bytes: [UInt8]) -> [UInt16]? {
        var compression: Int? = nil
        var index = 0
        while index + 1 < bytes.count {
            if bytes[index] == .colon, bytes[index + 1] == .colon {
                guard compression == nil else { return nil }  // two "::" would be ambiguous
                compression = index
                index += 2
            } else {
                index += 1
            }
        }
        guard let start = compression else {
            guard let groups = parseGroups(bytes[...], allowsIPv4: true), groups.count == 8 else { return nil }
            return groups
        }
        guard let head = parseGroups(bytes[..<start], allowsIPv4: false),
              let tail = parseGroups(bytes[(start + 2)...], allowsIPv4: true),
              head.count + tail.count <= 7  // "::" must stand for at least one group
        else { return nil }
        return head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
    }

    /// Colon-separated groups of 1–4 hex digits; an empty slice is zero groups (next to "::").
    private static func parseGroups(_ bytes: ArraySlice<UInt8>, allowsIPv4: Bool) -> [UInt16]? {
        if bytes.isEmpty { return [] }
        let parts = bytes.split(separator: .colon, omittingEmptySubsequences: false)
        var groups: [UInt16] = []
        for (index, part) in parts.enumerated() {
            if allowsIPv4, index == parts.count - 1, part.contains(.dot) {
                guard let value = parseIPv4(part) else { return nil }
                groups += [UInt16(value >> 16), UInt16(value & 0xffff)]
                continue
            }
            guard (1...4).contains(part.count) else { return nil }
            var group: UInt16 = 0
            for byte in part {
                guard let digit = hexValue(byte) else { return nil }
                group = group << 4 | digit
            }
            groups.append(group)
        }
        return groups
    }

    private static func isDigit(_ byte: UInt8) -> Bool { (UInt8.digitZero...UInt8.digitNine).contains(byte) }

    private static func hexValue(_ byte: UInt8) -> UInt16? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt16(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt16(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt16(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    /// Interface names / numeric scope ids: keep it to characters that cannot smuggle syntax.
    private static func isZoneByte(_ byte: UInt8) -> Bool {
        let lower = byte | 0x20  // ASCII letters fold to lowercase; digits and "-_." are unaffected
        return isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(lower)
            || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == .dot
    }
}

/// A CIDR block over the 16-byte form. IPv4 prefixes are stored as prefix + 96 so that an IPv4
/// network matches exactly the IPv4(-mapped) addresses it should.
struct IPNetwork: Hashable, Sendable, CustomStringConvertible {
    /// The network address with host bits cleared.
    let address: IPAddress
    /// 0–128, counted over the 16-byte form.
    let prefixLength: Int

    /// "10.0.0.0/8", "fd00::/8", or a bare address (/32 or /128). Host bits set in the text
    /// ("10.1.2.3/8") are cleared, as most CIDR tools do, rather than rejected.
    init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count <= 2, let address = IPAddress(String(parts[0])) else { return nil }
        // The notation decides the prefix scale: "::ffff:0:0/96" is an IPv6 prefix.
        let isIPv4Text = !parts[0].contains(":")
        var prefix = 128
        if parts.count == 2 {
            let digits = parts[1].utf8
            guard (1...3).contains(digits.count), digits.allSatisfy({ $0 >= .digitZero && $0 <= .digitNine }),
                  digits.count == 1 || digits.first != .digitZero,
                  let bits = Int(parts[1]), bits <= (isIPv4Text ? 32 : 128)
            else { return nil }
            prefix = isIPv4Text ? bits + 96 : bits
        }
        self.init(address: address, prefixLength: prefix)
    }

    init(address: IPAddress, prefixLength: Int) {
        let length = min(max(prefixLength, 0), 128)
        let (highMask, lowMask) = Self.masks(length)
        self.address = IPAddress(high: address.high & highMask, low: address.low & lowMask)
        self.prefixLength = length
    }

    func contains(_ other: IPAddress) -> Bool {
        let (highMask, lowMask) = Self.masks(prefixLength)
        return other.high & highMask == address.high && other.low & lowMask == address.low
    }

    var description: String {
        if address.isIPv4, prefixLength >= 96 { return "\(address)/\(prefixLength - 96)" }
        return "\(address)/\(prefixLength)"
    }

    private static func masks(_ length: Int) -> (UInt64, UInt64) {
        // Shifts by 64 are avoided explicitly rather than relying on Swift's smart-shift rules.
        switch length {
        case ...0: (0, 0)
        case 1...64: (~UInt64(0) << UInt64(64 - length), 0)
        case 65..<128: (~UInt64(0), ~UInt64(0) << UInt64(128 - length))
        default: (~UInt64(0), ~UInt64(0))
        }
    }
}

private extension UInt8 {
    static let colon = UInt8(ascii: ":")
    static let dot = UInt8(ascii: ".")
    static let percent = UInt8(ascii: "%")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let digitZero = UInt8(ascii: "0")
    static let digitNine = UInt8(ascii: "9")
}
