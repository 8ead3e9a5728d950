@testable import BulwarkApp
import Fluent
import SQLKit
import Testing
import Vapor

/// Follow-ups of the attacker's read: bounded decoding work, one canonical path for every decision, address-based
/// sign-in limits, lowercase identifiers, large bodies.
@Suite struct RequestEdgeTests {
    @Test func manyNumbersThatFitNoFieldCostOneBoundedAnswer() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            var junk: [String: Any] = [:]
            for index in 0..<1_500 { junk["n\(index)"] = 0.5 }
            let response = try await app.send(.PUT, "/api/v1/escalation/settings", token: tenant.token,
                                              json: ["learner_after_days": 1.5, "junk": junk])
            expectError(response, .badRequest, "BAD_REQUEST")
            #expect(JSON(response)["error"]["message"].string?.contains("do not fit") == true)
        }
    }

    @Test func anEmptyPathSegmentChangesNoDecision() async throws {
        try await withBulwark(clock: ManualClock(), adjust: { $0.rateLimits[.auth] = RateLimitRule(limit: 2, window: 900) }) { app in
            let tenant = try await Factory.tenant(app)
            let cookie = try await signInCookie(app, email: tenant.admin.email)
            // The router collapses "//": the cross-site check must see the same path the router does.
            let sneaky = try await app.send(.POST, "/api//v1/users", json: ["first_name": "A", "last_name": "B", "email": "x@acme.test"],
                                            headers: cookie)
            expectError(sneaky, .forbidden, "FORBIDDEN")
            #expect(try await User.query(on: app.db).filter(\.$email == "x@acme.test").count() == 0)
            // A trailing slash does not step around the sign-in limit (one attempt was spent by signInCookie).
            #expect(try await app.send(.POST, "/login/", body: "email=a@b.test&password=wrong-guess", contentType: .urlEncodedForm).status
                    == .unauthorized)
            #expect(try await app.send(.POST, "/login/", body: "email=a@b.test&password=wrong-guess", contentType: .urlEncodedForm).status
                    == .tooManyRequests)
        }
    }

    @Test func signInAttemptsCountAgainstTheAddressWhateverCredentialComesWithThem() async throws {
        try await withBulwark(clock: ManualClock(), adjust: { $0.rateLimits[.auth] = RateLimitRule(limit: 2, window: 900); $0.loginMaxFailures = 100 }) { app in
            let tenant = try await Factory.tenant(app)
            let keyResponse = try await app.send(.POST, "/api/v1/api-keys", token: tenant.token, json: ["name": "guesser"])
            let key = try #require(JSON(keyResponse)["data"]["key"].string)
            func guess(_ peer: String, token: String? = nil) async throws -> HTTPStatus {
                try await app.send(.POST, "/api/auth/login", token: token, json: ["email": "victim@x.test", "password": "guess-guess"],
                                   peer: peer).status
            }
            #expect(try await guess("2001:db8:1:2::10", token: key) == .unauthorized)
            // Another address of the same IPv6 /64, another credential: still the same budget.
            #expect(try await guess("2001:db8:1:2::99") == .unauthorized)
            #expect(try await guess("2001:db8:1:2:ffff::1", token: key) == .tooManyRequests)
            #expect(try await guess("2001:db8:1:3::1") == .tooManyRequests, "the account's own budget is spent too")
        }
    }

    @Test func forwardedForLinesAreReadTogether() async throws {
        try await withBulwark(adjust: { $0.trustedProxies = [IPNetwork(Application.testPeer)!] }) { app in
            let tenant = try await Factory.tenant(app)
            var headers = HTTPHeaders()
            headers.add(name: .xForwardedFor, value: "203.0.113.66")   // written by the client
            headers.add(name: .xForwardedFor, value: "198.51.100.9")   // appended by our proxy: the real client
            _ = try await app.send(.POST, "/api/v1/audit-logs", token: tenant.token, json: ["action": "proxy.lines"], headers: headers)
            let entry = try #require(try await AuditEntry.query(on: app.db).filter(\.$action == "custom.proxy.lines").first())
            #expect(entry.ip == "198.51.100.9")
        }
    }

    @Test func identifiersGoOutLowercaseAndAreAcceptedInAnyCase() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let created = JSON(try await app.send(.POST, "/api/v1/users", token: tenant.token,
                                                  json: ["first_name": "L", "last_name": "C", "email": "lc@acme.test"]))
            let id = try #require(created["data"]["id"].string)
            #expect(id == id.lowercased())
            #expect(created["data"]["client_id"].string == tenant.clientID)
            #expect(try await app.send(.GET, "/api/v1/users/\(id.uppercased())", token: tenant.token).status == .ok)
            let byTarget = JSON(try await app.send(.GET, "/api/v1/audit-logs?target=\(id.uppercased())", token: tenant.token))
            #expect(byTarget["data"].array.count == 1)
            let csv = try await app.send(.GET, "/api/v1/export/audit-logs", token: tenant.token).body.string
            #expect(csv.contains(id) && !csv.contains(id.uppercased()))
        }
    }

    /// Through a real listening server: the in-memory test path hands Vapor a body already collected, past its limit.
    @Test func bodiesUpToAMegabyteAreReadAndLargerOnesAnswer400() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            app.http.server.configuration.port = 0
            try await app.server.start(address: .hostname("127.0.0.1", port: 0))
            let port = try #require(app.http.server.shared.localAddress?.port)
            func post(_ path: String, _ body: [String: Any]) async throws -> Vapor.ClientResponse {
                try await app.client.post(URI(string: "http://127.0.0.1:\(port)\(path)")) { request in
                    request.headers.bearerAuthorization = .init(token: tenant.token)
                    request.headers.contentType = .json
                    request.body = ByteBuffer(data: try JSONSerialization.data(withJSONObject: body))
                }
            }
            let html = "<html><body><p>Hello {{first_name}}</p>" + String(repeating: "<p>Policy text.</p>", count: 12_000) + "</body></html>"
            let created = try await post("/api/v1/phishing/templates", [
                "name": "Long", "category": "credentials", "subject": "Hi", "sender_name": "IT", "sender_email": "it@acme.test",
                "html": html])
            #expect(created.status == .created, "\(html.utf8.count) bytes")
            let huge = try await post("/api/v1/users", ["first_name": String(repeating: "x", count: 1_200_000)])
            #expect(huge.status == .badRequest)
            #expect(try huge.content.decode(JSONValue.self) == .object([
                "success": .bool(false), "error": .object(["code": .string("BAD_REQUEST"), "message": .string("The request body is too large."),
                                                           "details": .null])]))
            await app.server.shutdown()
        }
    }
}
