import Vapor

/// Counts API requests per caller and category, stamps `X-RateLimit-*` on every API response, answers 429 past the limit.
struct RateLimitMiddleware: AsyncMiddleware {
    /// Taken once, when the application is configured, rather than looked up in its storage on every request.
    let rules: [RateCategory: RateLimitRule]
    let store: any RateLimitStore

    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        guard let category = RateCategory.of(method: request.method, path: request.routePath), let rule = rules[category] else {
            return try await next.respond(to: request)
        }
        let decision = try await store
            .hit(key: "\(category.rawValue):\(callerKey(request, category: category))", rule: rule, now: request.now, db: request.db)
        let response: Response
        if decision.allowed {
            do {
                response = try await next.respond(to: request)
            } catch {
                response = ErrorBody.response(for: error, on: request)
            }
        } else {
            let retryAfter = decision.resetAt - Int(request.now.timeIntervalSince1970)
            response = ErrorBody.response(for: APIError.rateLimited(retryAfter: retryAfter), on: request)
        }
        response.headers.replaceOrAdd(name: "X-RateLimit-Limit", value: String(decision.limit))
        response.headers.replaceOrAdd(name: "X-RateLimit-Remaining", value: String(decision.remaining))
        response.headers.replaceOrAdd(name: "X-RateLimit-Reset", value: String(decision.resetAt))
        return response
    }

    /// Who a request counts against. Sign-in attempts always count against the address: a credential someone holds
    /// must not buy a fresh budget for guessing someone else's password.
    private func callerKey(_ request: Request, category: RateCategory) -> String {
        if category != .auth, let principal = request.auth.get(Principal.self) { return principal.rateLimitKey }
        return "ip:" + Self.addressBucket(request.clientAddress)
    }

    /// An IPv6 client holds a whole /64 (it can pick any address in it), so the /64 is its bucket.
    static func addressBucket(_ address: IPAddress?) -> String {
        guard let address else { return "unknown" }
        if address.isIPv4 { return address.description }
        return IPNetwork(address: address, prefixLength: 64).description
    }
}

extension Request {
    /// The address the request came from: the TCP peer, or what X-Forwarded-For says when the peer is one of the
    /// proxies the operator listed in BULWARK_TRUSTED_PROXIES (never otherwise: anyone can send the header). Read from
    /// the socket's bytes: the rate limiter asks on every API request.
    var clientAddress: IPAddress? {
        guard let remote = remoteAddress, let peer = IPAddress(remote) else { return nil }
        let trusted = application.settings.trustedProxies
        guard !trusted.isEmpty else { return peer }
        // Several X-Forwarded-For lines are one list, in order (RFC 7230): a proxy may append its own line.
        let forwarded = headers[.xForwardedFor]
        return ForwardedFor.client(peer: peer, header: forwarded.isEmpty ? nil : forwarded.joined(separator: ","), trusted: trusted)
    }

    /// `clientAddress` as text (a dotted quad for IPv4).
    var clientIP: String? { clientAddress?.description }
}
