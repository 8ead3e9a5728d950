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
    var gatewayRanges: [IPNetwork] = []

    /// Why this request looks automated, or nil for a person.
    func reason(isHead: Bool, userAgent: String?, ip: String?, sentAt: Date?, now: Date) -> String? {
        if isHead { return "head_request" }
        guard let agent = userAgent?.lowercased(), !agent.isEmpty else { return "no_user_agent" }
        if let match = Self.knownAgents.first(where: { agent.contains($0) }) { return "scanner_user_agent:\(match)" }
        if let sentAt, now.timeIntervalSince(sentAt) < scannerWindow { return "seconds_after_delivery" }
        if let ip, let address = IPAddress(ip), gatewayRanges.contains(where: { $0.contains(address) }) { return "mail_gateway_range" }
        return nil
    }
}
