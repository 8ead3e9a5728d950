import Vapor

/// Dashboard pages need a signed-in session (cookie): anyone else is sent to the sign-in page.
/// State-changing forms must carry the session's CSRF token.
struct DashboardGuard: AsyncMiddleware {
    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        guard let principal = request.auth.get(Principal.self), case .session = principal.credential else {
            return request.redirect(to: DashboardPath.login)
        }
        if request.method == .POST { try CSRF.verify(request, principal: principal) }
        return try await next.respond(to: request)
    }
}

extension Request {
    /// Renders a Leaf view with status 200 (or `status`), e.g. 422 for a form shown again with its errors.
    func page(_ name: String, _ context: some Encodable, status: HTTPStatus = .ok) async throws -> Response {
        let view = try await self.view.render(name, context)
        let response = try await view.encodeResponse(status: status, for: self)
        response.headers.replaceOrAdd(name: "Cache-Control", value: "no-store")
        response.headers.replaceOrAdd(name: "X-Frame-Options", value: "DENY")
        return response
    }
}
