import Vapor

/// The three API families of the seeds, told apart by path. Each family has its own key style and its own way of
/// answering a validation error or a conflict.
enum RouteFamily: Sendable, Equatable {
    /// Seed 000: `/api/v1/...` and its public tracking routes `/api/phishing/...`.
    case awareness
    /// Seed 001: `/api/ttx`, `/api/portal`, `/api/auth`, `/api/threat-intel` (camelCase bodies).
    case tabletop
    /// Seed 002: `/api/v3`, `/api/v4`.
    case scorecard
    /// Everything else: dashboard pages, probes, the OpenAPI document.
    case other

    static let tabletopPrefixes = ["/api/ttx", "/api/portal", "/api/auth", "/api/threat-intel"]

    /// The path as the router sees it: Vapor routes `/api//v1/users/` to `/api/v1/users`, so every decision made from
    /// the path (family, rate-limit category, cross-site check) is made from the same collapsed form.
    static func canonical(_ path: String) -> String {
        // Already collapsed (most paths): one pass over the bytes instead of splitting and joining.
        let bytes = path.utf8
        let slash = UInt8(ascii: "/")
        if bytes.first == slash, bytes.count == 1 || bytes.last != slash,
           !zip(bytes, bytes.dropFirst()).contains(where: { $0 == slash && $1 == slash }) {
            return path
        }
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        return "/" + segments.joined(separator: "/")
    }

    init(path raw: String) {
        self.init(canonicalPath: Self.canonical(raw))
    }

    init(canonicalPath path: String) {
        func under(_ prefix: String) -> Bool { path == prefix || path.hasPrefix(prefix + "/") }
        if under("/api/v1") || under("/api/phishing") {
            self = .awareness
        } else if Self.tabletopPrefixes.contains(where: under) {
            self = .tabletop
        } else if under("/api/v3") || under("/api/v4") {
            self = .scorecard
        } else {
            self = .other
        }
    }

    var keyStyle: KeyStyle { self == .tabletop ? .camel : .snake }

    /// Seed 000 lists only 200, 201, 400, 401, 403, 404, 429 and 500: there a validation error or a state conflict
    /// answers 400 with the same body. Seed 002 (and the tabletop family, which follows it) answer 422 and 409.
    func wireStatus(for status: HTTPResponseStatus) -> HTTPResponseStatus {
        guard self == .awareness, status == .unprocessableEntity || status == .conflict else { return status }
        return .badRequest
    }
}

extension Request {
    /// `URI.path` (the path as the router splits it, still percent-encoded but for `%3B`), read straight from the
    /// URI's text when the path holds no `%` (most requests): `URI.path` parses the URI through Foundation on every read.
    static func targetPath(_ url: URI) -> String {
        let target = url.string
        // "//x" may be a host (a URI parsed from a string; the server parses targets as paths): left to `URI`.
        guard target.utf8.first == UInt8(ascii: "/"), target.utf8.dropFirst().first != UInt8(ascii: "/") else { return url.path }
        let end = target.utf8.firstIndex { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") } ?? target.utf8.endIndex
        let path = target.utf8[..<end]
        guard !path.contains(UInt8(ascii: "%")) else { return url.path }
        return String(Substring(path))
    }

    private struct RoutePathKey: StorageKey { typealias Value = (path: String, family: RouteFamily) }

    /// The canonical path and its family, worked out once per request: `url.path` percent-decodes through Foundation
    /// on every read, and the rate limiter, the authenticator and the response encoder each need it.
    private var route: (path: String, family: RouteFamily) {
        if let known = storage[RoutePathKey.self] { return known }
        let path = RouteFamily.canonical(Self.targetPath(url))
        let route = (path, RouteFamily(canonicalPath: path))
        storage[RoutePathKey.self] = route
        return route
    }

    var routePath: String { route.path }
    var routeFamily: RouteFamily { route.family }
}
