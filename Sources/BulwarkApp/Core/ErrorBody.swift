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
        let apiError = APIError(from: error)
        if apiError.status == .internalServerError {
            request.logger.report(error: error)
        }
        let body = ErrorBody(error: .init(code: apiError.code, message: apiError.message, details: apiError.details))
        var headers = apiError.headers
        headers.contentType = .json
        let data = (try? JSONEncoder().encode(body)) ?? Data(#"{"success":false}"#.utf8)
        return Response(status: apiError.status, headers: headers, body: .init(data: data))
    }
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
