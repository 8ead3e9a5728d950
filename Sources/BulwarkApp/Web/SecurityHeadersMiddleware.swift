import Vapor

/// Headers every page gets. HTML without its own policy (dashboard pages, error pages, certificates) runs no inline
/// script and loads nothing from elsewhere; pages that need another policy (the sandboxed phishing landing page and
/// template preview) set their own, which is left alone.
struct SecurityHeadersMiddleware: Middleware {
    static let pagePolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        + "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

    // A plain (future) middleware: it never waits, and an async one costs every request a task of its own.
    func respond(to request: Request, chainingTo next: any Responder) -> EventLoopFuture<Response> {
        next.respond(to: request).map { response in
            response.headers.replaceOrAdd(name: "X-Content-Type-Options", value: "nosniff")
            if Self.isHTML(response.headers.first(name: .contentType)), response.headers.first(name: "Content-Security-Policy") == nil {
                response.headers.replaceOrAdd(name: "Content-Security-Policy", value: Self.pagePolicy)
                response.headers.replaceOrAdd(name: "Referrer-Policy", value: "same-origin")
            }
            return response
        }
    }

    /// `text/html`, with or without parameters, in any case (without parsing every response's media type).
    static func isHTML(_ contentType: String?) -> Bool {
        guard let contentType else { return false }
        return contentType.utf8.count >= 9 && contentType.prefix(9).lowercased() == "text/html"
            && (contentType.utf8.count == 9 || [";", " "].contains(contentType.dropFirst(9).first))
    }
}
