import Vapor

/// Rate-limit categories of the seeds: 000 names read/write/export per minute, 002 general/auth/upload/report.
enum RateCategory: String, CaseIterable, Sendable {
    case read, write, export, general, auth, upload, report

    static let seedDefaults: [RateCategory: RateLimitRule] = [
        .read: .init(limit: 100, window: 60),
        .write: .init(limit: 5, window: 60),
        .export: .init(limit: 10, window: 60),
        .general: .init(limit: 1000, window: 3600),
        .auth: .init(limit: 100, window: 900),
        .upload: .init(limit: 50, window: 3600),
        .report: .init(limit: 20, window: 3600),
    ]

    /// The category a request counts against, or nil for routes outside the API (health, dashboard assets).
    static func of(method: HTTPMethod, path raw: String) -> RateCategory? {
        let path = RouteFamily.canonical(raw)
        // The dashboard's sign-in forms are guessed at like /api/auth/login, so they share its limit.
        if method == .POST, path == DashboardPath.login || path == DashboardPath.loginTOTP { return .auth }
        guard path.hasPrefix("/api/") else { return nil }
        if path == "/api/openapi.json" || path == "/api/docs" { return nil }
        if path.hasPrefix("/api/phishing/") { return nil } // public tracking routes take bursts by design
        if path.hasPrefix("/api/v1/") {
            if path.hasPrefix("/api/v1/export/") || path.hasSuffix("/export") { return .export }
            return method == .GET || method == .HEAD ? .read : .write
        }
        if path.hasPrefix("/api/auth/") || path.hasPrefix("/api/v3/auth/") { return .auth }
        if path.hasSuffix("/import") || path.contains("/upload") { return .upload }
        if path.hasPrefix("/api/portal/report") || path.hasPrefix("/api/portal/certificate") { return .report }
        return .general
    }
}

struct RateLimitRule: Sendable, Equatable {
    let limit: Int
    let window: Int

    init(limit: Int, window: Int) {
        self.limit = limit
        self.window = window
    }

    /// Parses "LIMIT/WINDOW_SECONDS", e.g. "100/60".
    init?(_ text: String) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let limit = Int(parts[0]), let window = Int(parts[1]), limit > 0, window > 0 else {
            return nil
        }
        self.init(limit: limit, window: window)
    }
}
