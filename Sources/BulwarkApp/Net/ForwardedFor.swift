/// The address a request really came from. Forwarding headers count only when the peer is a proxy the operator trusts.
///
/// X-Forwarded-For is written by the client first and appended to by each proxy, so only the
/// right-hand end (added by proxies we trust) is believable. Anything to the left of the first
/// untrusted hop could have been typed by the client and is never returned.
enum ForwardedFor {
    /// peer: the TCP peer address text (may be nil); header: the raw X-Forwarded-For value (may be nil; may contain
    /// several comma-separated hops, spaces, IPv6 in brackets or with ports like "1.2.3.4:5678" / "[::1]:80", junk);
    /// trusted: the operator's proxies. Rule: if peer is nil or not trusted → return peer (ignore the header entirely).
    /// Otherwise walk the header's hops from right to left, skipping hops that are themselves trusted proxies; the
    /// first untrusted hop is the client. If a hop is unparseable, stop and return the last trusted hop seen (never a
    /// forged value). If all hops are trusted, return the leftmost hop.
    ///
    /// Returns canonical address text (`IPAddress.description`), or the peer text unchanged when the peer does not
    /// parse as an address (e.g. a Unix socket path).
    static func clientAddress(peer: String?, header: String?, trusted: [IPNetwork]) -> String? {
        guard let peer else { return nil }
        guard let peerAddress = parseHop(trimmed(peer[...])) else { return peer }
        return client(peer: peerAddress, header: header, trusted: trusted).description
    }

    /// The same rule for a peer already read as an address (a request's socket).
    static func client(peer peerAddress: IPAddress, header: String?, trusted: [IPNetwork]) -> IPAddress {
        func isTrusted(_ address: IPAddress) -> Bool { trusted.contains { $0.contains(address) } }
        guard isTrusted(peerAddress), let header, !trimmed(header[...]).isEmpty else { return peerAddress }

        // The nearest hop we can vouch for: first the peer, then each trusted proxy in the chain.
        var lastTrusted = peerAddress
        for hop in header.split(separator: ",", omittingEmptySubsequences: false).reversed() {
            // An empty or garbled hop means the chain can no longer be followed reliably.
            guard let address = parseHop(trimmed(hop)) else { return lastTrusted }
            guard isTrusted(address) else { return address }
            lastTrusted = address
        }
        return lastTrusted  // every hop was a trusted proxy: the leftmost one is all we know
    }

    /// One hop: "1.2.3.4", "1.2.3.4:5678", "::1", "[::1]", "[::1]:80". A bare IPv6 address cannot
    /// carry a port (the last group would be ambiguous), which is why brackets exist.
    static func parseHop(_ text: Substring) -> IPAddress? {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let rest = text[text.index(after: close)...]
            guard rest.isEmpty || (rest.hasPrefix(":") && isPort(rest.dropFirst())) else { return nil }
            return IPAddress(String(text[...close]))
        }
        let colons = text.filter { $0 == ":" }.count
        if colons == 1, let colon = text.firstIndex(of: ":") {
            // Exactly one colon can only be IPv4 with a port (IPv6 always has at least two).
            guard isPort(text[text.index(after: colon)...]) else { return nil }
            return IPAddress(String(text[..<colon]))
        }
        return IPAddress(String(text))
    }

    static func parseHop(_ text: String) -> IPAddress? { parseHop(text[...]) }

    /// 1–5 ASCII digits, 0–65535 (0 is tolerated: some proxies write it for "unknown port").
    private static func isPort(_ text: Substring) -> Bool {
        guard (1...5).contains(text.utf8.count),
              text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              let value = Int(text)
        else { return false }
        return value <= 65535
    }

    /// Spaces and tabs are the only whitespace allowed around list elements in HTTP (OWS).
    private static func trimmed(_ text: Substring) -> Substring {
        let isOWS: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = text.firstIndex(where: { !isOWS($0) }), let last = text.lastIndex(where: { !isOWS($0) })
        else { return "" }
        return text[first...last]
    }
}
