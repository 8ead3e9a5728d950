@testable import BulwarkApp
import Foundation
import Testing
import Vapor
import VaporTesting

/// Reads a JSON response loosely: `json["data"]["email"].string`.
struct JSON: @unchecked Sendable {
    // Holds only values produced by JSONSerialization (immutable Foundation containers).
    let value: Any?

    init(_ value: Any?) { self.value = value }

    init(_ response: TestingHTTPResponse) {
        value = try? JSONSerialization.jsonObject(with: Data(response.body.readableBytesView), options: [.fragmentsAllowed])
    }

    subscript(key: String) -> JSON { JSON((value as? [String: Any])?[key]) }
    subscript(index: Int) -> JSON {
        guard let array = value as? [Any], array.indices.contains(index) else { return JSON(nil) }
        return JSON(array[index])
    }

    var string: String? { value as? String }
    var int: Int? { (value as? NSNumber)?.intValue }
    var double: Double? { (value as? NSNumber)?.doubleValue }
    var bool: Bool? { value as? Bool }
    var array: [JSON] { (value as? [Any])?.map(JSON.init) ?? [] }
    var keys: Set<String> { Set((value as? [String: Any])?.keys.map { $0 } ?? []) }
    var isNull: Bool { value is NSNull }
    var exists: Bool { value != nil }
}

extension Application {
    /// Sends one request. `json` is encoded as the body; `token` goes in the Authorization header.
    func send(_ method: HTTPMethod, _ path: String, token: String? = nil, json: [String: Any]? = nil,
              body: String? = nil, contentType: HTTPMediaType? = nil, headers extra: HTTPHeaders = [:]) async throws -> TestingHTTPResponse {
        var headers = extra
        if let token { headers.bearerAuthorization = .init(token: token) }
        var buffer: ByteBuffer?
        if let json {
            headers.contentType = .json
            buffer = ByteBuffer(data: try JSONSerialization.data(withJSONObject: json))
        } else if let body {
            headers.contentType = contentType ?? .plainText
            buffer = ByteBuffer(string: body)
        }
        return try await testing().sendRequest(method, path, headers: headers, body: buffer)
    }
}

/// Asserts the error envelope and code.
func expectError(_ response: TestingHTTPResponse, _ status: HTTPResponseStatus, _ code: String,
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(response.status == status, "body: \(response.body.string)", sourceLocation: sourceLocation)
    let json = JSON(response)
    #expect(json["success"].bool == false, sourceLocation: sourceLocation)
    #expect(json["error"]["code"].string == code, sourceLocation: sourceLocation)
}

/// The tenant-isolation check of DESIGN.md: the same request made by another tenant answers 404.
func expectOtherTenantGets404(_ app: Application, _ method: HTTPMethod, _ path: String, json: [String: Any]? = nil,
                              sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let outsider = try await Factory.tenant(app, name: "Outsider\(UUID().uuidString.prefix(4))")
    let response = try await app.send(method, path, token: outsider.token, json: json)
    expectError(response, .notFound, "NOT_FOUND", sourceLocation: sourceLocation)
}
