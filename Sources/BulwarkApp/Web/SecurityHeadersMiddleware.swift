import Vapor

/// Headers every page gets. HTML without its own policy (dashboard pages, error pages, certificates) runs no inline
/// script and loads nothing from elsewhere; pages that need another policy (the sandboxed phishing landing page and
/// template preview) set their own, which is left alone.
struct SecurityHeadersMiddleware: AsyncMiddleware {
    static let pagePolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        + "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        let response = try await next.respond(to: request)
        response.headers.replaceOrAdd(name: "X-Content-Type-Options", value: "nosniff")
        if response.headers.contentType?.subType == "html", response.headers.first(name: "Content-Security-Policy") == nil {
            response.headers.replaceOrAdd(name: "Content-Security-Policy", value: Self.pagePolicy)
            response.headers.replaceOrAdd(name: "Referrer-Policy", value: "same-origin")
        }
        return response
    }
}
