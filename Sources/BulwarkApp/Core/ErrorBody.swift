import Vapor

/// Wire form of an error: `{"success": false, "error": {"code", "message", "details"}}`.
struct ErrorBody: Encodable {
    struct Detail: Encodable {
        let code: String
        let message: String
        @Nullable var details: [String: [String]]?
    }
    let success = false
    let error: Detail

    /// The single place an error becomes an HTTP response.
    static func response(for error: any Error, on request: Request) -> Response {
        var apiError = APIError(from: error)
        if apiError.status == .internalServerError {
            request.logger.report(error: error)
        }
        apiError.status = request.routeFamily.wireStatus(for: apiError.status)
        var headers = apiError.headers
        if isDashboardPage(request.routePath) {
            headers.contentType = .html
            let html = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>\(apiError.status.code) · Bulwark</title>"
                + "<link rel=\"stylesheet\" href=\"/css/app.css\"></head><body class=\"auth\"><main class=\"card\">"
                + "<h1>\(apiError.status.code)</h1><p>\(HTML.escape(apiError.message))</p><p><a href=\"/dashboard\">Back to Bulwark</a></p></main></body></html>"
            return Response(status: apiError.status, headers: headers, body: .init(string: html))
        }
        let body = ErrorBody(error: .init(code: apiError.code, message: apiError.message, details: apiError.details))
        headers.contentType = .json
        let data = (try? JSONEncoder().encode(body)) ?? Data(#"{"success":false}"#.utf8)
        return Response(status: apiError.status, headers: headers, body: .init(data: data))
    }
}

/// People's pages get an HTML error; the API, probes and metrics get the JSON envelope.
private func isDashboardPage(_ path: String) -> Bool {
    !(path.hasPrefix("/api/") || path == "/api" || path == "/health" || path == "/ready" || path == "/metrics")
}

/// Outermost middleware: renders every thrown error, including unknown routes, in the envelope.
struct APIErrorMiddleware: AsyncMiddleware {
    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        do {
            return try await next.respond(to: request)
        } catch {
            return ErrorBody.response(for: error, on: request)
        }
    }
}
