import Foundation

/// Recognises security scanners and link pre-fetchers so their opens and clicks do not count as people's.
struct BotDetector: Sendable {
    /// Substrings of user agents used by mail gateways, link scanners and preview fetchers.
    static let knownAgents = [
        "bot", "crawler", "spider", "slurp", "preview", "scanner", "barracuda", "proofpoint", "mimecast", "safelinks",
        "microsoft office", "ms-office", "google-safety", "googleimageproxy", "yahoomailproxy", "symantec", "forcepoint",
        "trendmicro", "sophos", "fireeye", "zscaler", "curl/", "wget/", "python-requests", "go-http-client", "headlesschrome",
        "facebookexternalhit", "slackbot", "whatsapp", "skypeuripreview",
    ]

    var scannerWindow: TimeInterval = 10
    var gatewayRanges: [IPv4Range] = []

    /// Why this request looks automated, or nil for a person.
    func reason(isHead: Bool, userAgent: String?, ip: String?, sentAt: Date?, now: Date) -> String? {
        if isHead { return "head_request" }
        guard let agent = userAgent?.lowercased(), !agent.isEmpty else { return "no_user_agent" }
        if let match = Self.knownAgents.first(where: { agent.contains($0) }) { return "scanner_user_agent:\(match)" }
        if let sentAt, now.timeIntervalSince(sentAt) < scannerWindow { return "seconds_after_delivery" }
        if let ip, let address = IPv4Range.parse(ip), gatewayRanges.contains(where: { $0.contains(address) }) { return "mail_gateway_range" }
        return nil
    }
}

struct IPv4Range: Sendable, Equatable {
    let network: UInt32
    let prefix: Int

    /// "192.0.2.0/24" or a single address.
    init?(_ text: String) {
        let parts = text.trimmingCharacters(in: .whitespaces).split(separator: "/")
        guard let address = Self.parse(String(parts[0])) else { return nil }
        let prefix = parts.count > 1 ? Int(parts[1]) ?? -1 : 32
        guard (0...32).contains(prefix) else { return nil }
        self.prefix = prefix
        network = address & Self.mask(prefix)
    }

    func contains(_ address: UInt32) -> Bool { address & Self.mask(prefix) == network }

    static func mask(_ prefix: Int) -> UInt32 { prefix == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefix) }

    static func parse(_ text: String) -> UInt32? {
        let octets = text.split(separator: ".").compactMap { UInt32($0) }
        guard octets.count == 4, octets.allSatisfy({ $0 < 256 }) else { return nil }
        return octets.reduce(0) { $0 << 8 | $1 }
    }
}
