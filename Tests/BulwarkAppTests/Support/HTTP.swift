@testable import BulwarkApp
import Foundation
import NIOCore
import Testing
import Vapor
import VaporTesting

/// Reads a JSON response loosely: `json["data"]["email"].string`.
struct JSON: @unchecked Sendable {
    // Holds only values produced by JSONSerialization (immutable Foundation containers).
    let value: Any?

    init(_ value: Any?) { self.value = value }

    init(_ response: TestResponse) {
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

/// One answer of the app under test.
struct TestResponse: Sendable {
    var status: HTTPStatus
    var headers: HTTPHeaders
    var body: ByteBuffer
}

extension Application {
    /// The TCP peer every test request comes from unless a test says otherwise (a documentation address, RFC 5737).
    static let testPeer = "192.0.2.10"

    /// Sends one request through the whole middleware stack, from `peer` as the TCP peer address (VaporTesting's
    /// in-memory requests have none, and the client address matters to rate limits, audit entries and tracking).
    /// `json` is encoded as the body; `token` goes in the Authorization header.
    func send(_ method: HTTPMethod, _ path: String, token: String? = nil, json: [String: Any]? = nil,
              body: String? = nil, contentType: HTTPMediaType? = nil, headers extra: HTTPHeaders = [:],
              peer: String = Application.testPeer, settle: Bool = true) async throws -> TestResponse {
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
        headers.replaceOrAdd(name: .contentLength, value: String(buffer?.readableBytes ?? 0))
        try await asyncBoot()
        let request = Request(application: self, method: method, url: URI(string: path), headers: headers,
                              collectedBody: buffer, remoteAddress: try SocketAddress(ipAddress: peer, port: 40_000),
                              logger: logger, on: eventLoopGroup.next())
        let response = try await responder.respond(to: request).get()
        let collected = try await response.body.collect(on: request.eventLoop).get() ?? ByteBuffer()
        // Tests also read the database directly; a signed-in request would wait for the tracking journal by itself.
        if settle { await trackingWriter.caughtUp(timeout: .seconds(30)) }
        return TestResponse(status: response.status, headers: response.headers, body: collected)
    }
}

/// Asserts the error envelope and code.
func expectError(_ response: TestResponse, _ status: HTTPResponseStatus, _ code: String,
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

/// Signs in through the dashboard form and returns a Cookie header carrying the session.
func signInCookie(_ app: Application, email: String, password: String = "password123",
                  sourceLocation: SourceLocation = #_sourceLocation) async throws -> HTTPHeaders {
    let response = try await app.send(.POST, "/login", body: "email=\(email)&password=\(password)", contentType: .urlEncodedForm)
    #expect(response.status == .seeOther, sourceLocation: sourceLocation)
    let cookie = try #require(response.headers.setCookie?[PrincipalAuthenticator.cookieName], sourceLocation: sourceLocation)
    var headers = HTTPHeaders()
    headers.cookie = HTTPCookies(dictionaryLiteral: (PrincipalAuthenticator.cookieName, .init(string: cookie.string)))
    return headers
}

/// Walks every page of a list by `next_cursor`, seven at a time, running `between` after each page; returns `field` of
/// each item in the order seen.
func walkPages(_ app: Application, _ path: String, token: String, field: String,
               between: (Int) async throws -> Void = { _ in }) async throws -> [String] {
    var seen: [String] = []
    var cursor: String?
    var pages = 0
    repeat {
        let separator = path.contains("?") ? "&" : "?"
        let url = path + separator + "per_page=7" + (cursor.map { "&cursor=\($0)" } ?? "")
        let response = try await app.send(.GET, url, token: token)
        #expect(response.status == .ok, "body: \(response.body.string)")
        let json = JSON(response)
        seen += json["data"].array.compactMap { $0[field].string }
        cursor = json["pagination"]["next_cursor"].string
        pages += 1
        try await between(pages)
    } while cursor != nil && pages < 100
    #expect(cursor == nil, "the walk ended within 100 pages")
    return seen
}
