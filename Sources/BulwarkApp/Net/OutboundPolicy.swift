import Foundation

/// Which outbound targets a tenant may make the server connect to (SMTP relays, webhooks, integrations, AI providers, feeds).
///
/// The default is "public internet only": a tenant must not be able to point the server at its own
/// loopback, the private network it sits in, or a cloud metadata endpoint (SSRF). The operator widens
/// this with BULWARK_OUTBOUND_ALLOW. Decisions are made on the addresses the caller actually resolved,
/// so the caller must connect to exactly those addresses (not re-resolve the name) to avoid DNS rebinding.
struct OutboundPolicy: Sendable {
    /// A BULWARK_OUTBOUND_ALLOW entry that is neither "*", a host name, host:port, nor an address/CIDR.
    struct InvalidEntry: Error, CustomStringConvertible, LocalizedError {
        let entry: String
        var description: String {
            "BULWARK_OUTBOUND_ALLOW: invalid entry \"\(entry)\" (expected *, a host name, host:port, an address or a CIDR)"
        }
        var errorDescription: String? { description }
    }

    enum Decision: Equatable, Sendable {
        case allowed
        case refused(String)
    }

    private struct Endpoint<Host: Hashable & Sendable>: Hashable, Sendable {
        let host: Host
        let port: Int
    }

    private(set) var allowsEverything = false
    private var names: Set<String> = []                    // "relay.internal": any port, any address
    private var namePorts: Set<Endpoint<String>> = []      // "relay.internal:2525"
    private var networks: [IPNetwork] = []                 // "10.1.0.0/16", "::1": any port
    private var addressPorts: Set<Endpoint<IPAddress>> = [] // "127.0.0.1:25", "[::1]:25"

    /// Nothing allowed beyond the public internet (the default).
    static let denyAll = OutboundPolicy()

    private init() {}

    /// Parses BULWARK_OUTBOUND_ALLOW. Empty entries (e.g. a trailing comma) are skipped; anything
    /// unrecognised throws, because a silently ignored typo would leave the operator guessing.
    init(allowList: String) throws {
        for raw in allowList.split(separator: ",", omittingEmptySubsequences: false) {
            let entry = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if entry.isEmpty { continue }
            if entry == "*" {
                allowsEverything = true
            } else if let network = IPNetwork(entry) {
                networks.append(network)
            } else if let (host, port) = Self.splitHostPort(entry) {
                if let address = IPAddress(host) {
                    addressPorts.insert(Endpoint(host: address, port: port))
                } else if let name = Self.validHostName(host) {
                    namePorts.insert(Endpoint(host: name, port: port))
                } else {
                    throw InvalidEntry(entry: entry)
                }
            } else if let name = Self.validHostName(entry) {
                names.insert(name)
            } else {
                throw InvalidEntry(entry: entry)
            }
        }
    }

    /// host: the name the tenant configured (or an address literal); port: the port; addresses: every address the
    /// name resolved to. Allowed when the policy allows everything, the host (or host:port) is listed, or every
    /// resolved address is public or explicitly allowed (address:port entries only on that port).
    ///
    /// An empty `addresses` is refused even under "*": there is nothing to connect to, and saying so is clearer.
    func decide(host: String, port: Int, addresses: [IPAddress]) -> Decision {
        let shownHost = Self.printable(host)
        guard !addresses.isEmpty else { return .refused("\(shownHost) could not be resolved") }
        if allowsEverything { return .allowed }

        // A listed name is trusted whatever it resolves to: the operator vouches for their own DNS.
        let name = Self.canonicalName(host)
        if names.contains(name) || namePorts.contains(Endpoint(host: name, port: port)) { return .allowed }

        // Every address must pass: a name resolving to one public and one private address would
        // otherwise let an attacker win whichever address the connector happens to try.
        for address in addresses {
            guard let reason = Self.nonPublicReason(address) else { continue }
            if networks.contains(where: { $0.contains(address) }) { continue }
            if addressPorts.contains(Endpoint(host: address, port: port)) { continue }
            if IPAddress(host) == address {
                return .refused("\(address) is \(reason)")
            }
            return .refused("\(shownHost) resolves to \(address), \(reason)")
        }
        return .allowed
    }

    /// Why an address is not public (e.g. "a loopback address"), or nil when it is public.
    static func nonPublicReason(_ address: IPAddress) -> String? {
        if address.isIPv4 { return firstMatch(address, in: ipv4Rules) }  // also covers ::ffff:0:0/96
        if let reason = firstMatch(address, in: ipv6Rules) { return reason }
        // Transition formats carry an IPv4 address that a gateway or the kernel may deliver to,
        // so they are exactly as dangerous as the IPv4 address inside them.
        for (network, kind, shift) in embeddingRules where network.contains(address) {
            let embedded = UInt32(truncatingIfNeeded: (shift >= 64 ? address.high : address.low) >> (shift % 64))
            let inner = IPAddress(ipv4: embedded)
            guard let reason = firstMatch(inner, in: ipv4Rules) else { return nil }
            return "\(kind) embedding \(inner), \(reason)"
        }
        // Only 2000::/3 is allocated for global unicast; anything else is unassigned or special-purpose.
        return globalUnicast.contains(address) ? nil : "a reserved address"
    }

    // MARK: - Ranges

    private typealias Rule = (network: IPNetwork, reason: String)

    private static func rules(_ table: [(String, String)]) -> [Rule] {
        table.map { (IPNetwork($0.0)!, $0.1) }  // literals below; covered by tests
    }

    private static func firstMatch(_ address: IPAddress, in rules: [Rule]) -> String? {
        rules.first { $0.network.contains(address) }?.reason
    }

    /// Order matters: single addresses come before the ranges that contain them.
    private static let ipv4Rules = rules([
        ("169.254.169.254", "a cloud metadata address"),   // AWS, GCP, Azure, OpenStack…
        ("100.100.100.200", "a cloud metadata address"),   // Alibaba Cloud
        ("255.255.255.255", "a broadcast address"),
        ("0.0.0.0/8", "an unspecified address"),          // Linux connects 0.0.0.0 to localhost
        ("10.0.0.0/8", "a private address"),
        ("172.16.0.0/12", "a private address"),
        ("192.168.0.0/16", "a private address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local address"),
        ("100.64.0.0/10", "an address in the shared address space (carrier-grade NAT)"),
        ("192.0.0.0/24", "a reserved address"),           // IETF protocol assignments
        ("192.0.2.0/24", "a reserved address"),           // TEST-NET-1
        ("198.18.0.0/15", "a reserved address"),          // benchmarking
        ("198.51.100.0/24", "a reserved address"),        // TEST-NET-2
        ("203.0.113.0/24", "a reserved address"),         // TEST-NET-3
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),
    ])

    private static let ipv6Rules = rules([
        ("::", "an unspecified address"),
        ("::1", "a loopback address"),
        ("fd00:ec2::254", "a cloud metadata address"),    // AWS IMDS over IPv6
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),            // deprecated, but still routed internally on some networks
        ("fc00::/7", "a unique-local address"),
        ("ff00::/8", "a multicast address"),
        ("2001:db8::/32", "a reserved address"),          // documentation
    ])

    /// (range, description, bit offset of the embedded IPv4 address counted from the low end).
    private static let embeddingRules: [(IPNetwork, String, Int)] = [
        (IPNetwork("64:ff9b::/96")!, "a NAT64 address", 0),
        (IPNetwork("2002::/16")!, "a 6to4 address", 80),  // bits 16–48 from the top
        (IPNetwork("::/96")!, "an IPv4-compatible address", 0),  // :: and ::1 matched earlier
    ]

    private static let globalUnicast = IPNetwork("2000::/3")!

    // MARK: - Entry parsing

    /// "host:port" or "[v6]:port"; nil when the text has no port part (or is a bare IPv6 address).
    private static func splitHostPort(_ entry: String) -> (host: String, port: Int)? {
        let separator: String.Index
        if entry.hasPrefix("[") {
            guard let close = entry.firstIndex(of: "]") else { return nil }
            separator = entry.index(after: close)
            guard separator < entry.endIndex, entry[separator] == ":" else { return nil }
        } else {
            guard entry.filter({ $0 == ":" }).count == 1, let colon = entry.firstIndex(of: ":") else { return nil }
            separator = colon
        }
        let portText = entry[entry.index(after: separator)...]
        guard (1...5).contains(portText.utf8.count), portText.utf8.allSatisfy({ (48...57).contains($0) }),
              let port = Int(portText), (1...65535).contains(port)
        else { return nil }
        return (String(entry[..<separator]), port)
    }

    /// A DNS name of letters, digits, "-" and "_" labels (ASCII; write IDNs as punycode).
    /// A numeric last label is refused so junk like "1.2.3" or "010.0.0.1" is not taken for a name.
    private static func validHostName(_ text: String) -> String? {
        let name = canonicalName(text)
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        guard !name.isEmpty, name.utf8.count <= 253, let last = labels.last,
              !last.utf8.allSatisfy({ (48...57).contains($0) })
        else { return nil }
        for label in labels {
            let bytes = label.utf8
            guard (1...63).contains(bytes.count), bytes.first != 45, bytes.last != 45,  // 45 = "-"
                  bytes.allSatisfy({ (97...122).contains($0) || (48...57).contains($0) || $0 == 45 || $0 == 95 })
            else { return nil }
        }
        return name
    }

    /// Lowercased, one trailing dot removed ("Relay.Internal." and "relay.internal" are the same host).
    private static func canonicalName(_ text: String) -> String {
        let lower = text.trimmingCharacters(in: .whitespaces).lowercased()
        return lower.hasSuffix(".") ? String(lower.dropLast()) : lower
    }

    /// Tenant-supplied text goes into messages and logs: keep it short and free of control characters.
    private static func printable(_ text: String) -> String {
        var scalars = String.UnicodeScalarView()
        scalars.append(contentsOf: text.unicodeScalars.lazy.filter { (32...126).contains($0.value) }.prefix(253))
        return String(scalars)
    }
}
