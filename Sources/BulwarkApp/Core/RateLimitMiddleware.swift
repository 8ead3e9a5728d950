import Vapor

/// Counts API requests per caller and category, stamps `X-RateLimit-*` on every API response, answers 429 past the limit.
struct RateLimitMiddleware: AsyncMiddleware {
    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        guard let category = RateCategory.of(method: request.method, path: request.url.path),
              let rule = request.application.settings.rateLimits[category] else {
            return try await next.respond(to: request)
        }
        let decision = try await request.application.rateLimitStore
            .hit(key: "\(category.rawValue):\(callerKey(request))", rule: rule, now: request.now, db: request.db)
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

    private func callerKey(_ request: Request) -> String {
        if let principal = request.auth.get(Principal.self) { return principal.rateLimitKey }
        return "ip:" + (request.clientIP ?? "unknown")
    }
}

extension Request {
    /// The peer address, or the first X-Forwarded-For hop when set by a proxy.
    var clientIP: String? {
        if let forwarded = headers.first(name: "X-Forwarded-For")?.split(separator: ",").first {
            return forwarded.trimmingCharacters(in: .whitespaces)
        }
        return remoteAddress?.ipAddress
    }
}
