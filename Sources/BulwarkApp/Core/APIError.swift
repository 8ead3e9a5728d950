import Vapor

/// The one error type of the API. Everything a route throws is turned into this shape by `APIErrorMiddleware`.
struct APIError: Error, Sendable {
    var status: HTTPResponseStatus
    let code: String
    let message: String
    let details: [String: [String]]?
    var headers: HTTPHeaders = [:]

    static func validation(_ details: [String: [String]], message: String = "The given data was invalid.") -> APIError {
        APIError(status: .unprocessableEntity, code: "VALIDATION_ERROR", message: message, details: details)
    }
    /// A query-string parameter out of range or of the wrong form: "400 Bad request - invalid parameters" in every
    /// family, with the same per-field details as a validation error of the body.
    static func invalidQuery(_ details: [String: [String]]) -> APIError {
        APIError(status: .badRequest, code: "VALIDATION_ERROR", message: "The query parameters are invalid.", details: details)
    }
    static func badRequest(_ message: String) -> APIError {
        APIError(status: .badRequest, code: "BAD_REQUEST", message: message, details: nil)
    }
    static func unauthorized(_ message: String = "Authentication required.", details: [String: [String]]? = nil) -> APIError {
        APIError(status: .unauthorized, code: "UNAUTHORIZED", message: message, details: details)
    }
    static func forbidden(_ message: String = "You do not have permission to do this.") -> APIError {
        APIError(status: .forbidden, code: "FORBIDDEN", message: message, details: nil)
    }
    static func notFound(_ what: String = "Resource") -> APIError {
        APIError(status: .notFound, code: "NOT_FOUND", message: "\(what) not found.", details: nil)
    }
    static func conflict(_ message: String) -> APIError {
        APIError(status: .conflict, code: "CONFLICT", message: message, details: nil)
    }
    static func rateLimited(retryAfter seconds: Int, message: String = "Too many requests.") -> APIError {
        var error = APIError(status: .tooManyRequests, code: "RATE_LIMITED", message: message, details: nil)
        error.headers.replaceOrAdd(name: "Retry-After", value: String(max(seconds, 1)))
        return error
    }
    static let internalError = APIError(
        status: .internalServerError, code: "INTERNAL_ERROR", message: "An internal error occurred.", details: nil)
}

extension APIError {
    /// Maps any error to the API shape. Internals (database messages, stack details) never reach the client.
    init(from error: any Error) {
        switch error {
        case let apiError as APIError:
            self = apiError
        case is DecodingError:
            self = .badRequest("The request body could not be parsed: \(APIError.describe(error as! DecodingError))")
        case let abort as any AbortError:
            self = APIError(abort: abort)
        case _ where DatabaseAvailability.isUnavailable(error):
            self = .databaseUnavailable
        default:
            self = .internalError
        }
    }

    private init(abort: any AbortError) {
        let code: String
        switch abort.status {
        case .badRequest: code = "BAD_REQUEST"
        case .unauthorized: code = "UNAUTHORIZED"
        case .forbidden: code = "FORBIDDEN"
        case .notFound: code = "NOT_FOUND"
        case .conflict: code = "CONFLICT"
        case .unprocessableEntity: code = "VALIDATION_ERROR"
        case .tooManyRequests: code = "RATE_LIMITED"
        case .payloadTooLarge: code = "BAD_REQUEST"
        case .unsupportedMediaType: code = "BAD_REQUEST"
        case .methodNotAllowed: code = "NOT_FOUND"
        default: code = abort.status.code >= 500 ? "INTERNAL_ERROR" : "BAD_REQUEST"
        }
        let message: String
        if abort.status == .notFound || abort.status == .methodNotAllowed {
            message = "Route not found."
        } else if abort.status == .payloadTooLarge {
            message = "The request body is too large."
        } else if abort.status.code >= 500 {
            message = "An internal error occurred."
        } else {
            message = abort.reason
        }
        // No seed lists 405, 413 or 415: they answer as the not-found and bad-request cases they are.
        let status: HTTPResponseStatus
        switch abort.status {
        case .methodNotAllowed: status = .notFound
        case .payloadTooLarge, .unsupportedMediaType: status = .badRequest
        default: status = abort.status
        }
        self.init(status: status, code: code, message: message, details: nil, headers: abort.headers)
    }

    private static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let joined = context.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
            return joined.isEmpty ? "body" : joined
        }
        switch error {
        case let .typeMismatch(type, context): return "\(path(context)) has the wrong type (expected \(type))."
        case let .valueNotFound(_, context): return "\(path(context)) must not be null."
        case let .keyNotFound(key, _): return "\(key.stringValue) is missing."
        case let .dataCorrupted(context): return "\(path(context)) is malformed."
        @unknown default: return "malformed body."
        }
    }
}
