@testable import BulwarkApp
import Fluent
import Testing
import Vapor

/// Item 4: X-Forwarded-For counts only when the peer is a proxy the operator listed.
@Suite struct ProxyTests {
    @Test func forwardedForFromAnUnlistedPeerIsIgnored() async throws {
        try await withBulwark(clock: ManualClock(), adjust: { $0.rateLimits[.auth] = RateLimitRule(limit: 2, window: 900) }) { app in
            // Rotating the header gives no fresh bucket: the third request from the same peer is limited.
            for index in 0..<2 {
                let response = try await app.send(.POST, "/api/auth/login", json: ["email": "x@y.test", "password": "whatever1"],
                                                  headers: ["X-Forwarded-For": "203.0.113.\(index)"])
                #expect(response.status == .unauthorized)
            }
            let third = try await app.send(.POST, "/api/auth/login", json: ["email": "x@y.test", "password": "whatever1"],
                                           headers: ["X-Forwarded-For": "203.0.113.99"])
            expectError(third, .tooManyRequests, "RATE_LIMITED")
            // And the audit log records the peer, not the forged address.
            let tenant = try await Factory.tenant(app)
            _ = try await app.send(.POST, "/api/v1/audit-logs", token: tenant.token, json: ["action": "proxy.check"],
                                   headers: ["X-Forwarded-For": "203.0.113.50"])
            let entry = try #require(try await AuditEntry.query(on: app.db).filter(\.$action == "custom.proxy.check").first())
            #expect(entry.ip == Application.testPeer)
        }
    }

    @Test func aListedProxysForwardedForIsBelieved() async throws {
        try await withBulwark(adjust: { $0.trustedProxies = [IPNetwork("192.0.2.0/24")!] }) { app in
            let tenant = try await Factory.tenant(app)
            _ = try await app.send(.POST, "/api/v1/audit-logs", token: tenant.token, json: ["action": "proxy.check"],
                                   headers: ["X-Forwarded-For": "198.51.100.77, 192.0.2.99"])
            let entry = try #require(try await AuditEntry.query(on: app.db).filter(\.$action == "custom.proxy.check").first())
            #expect(entry.ip == "198.51.100.77")
        }
    }

    @Test func invalidProxyOrAllowListSettingsStopTheStart() throws {
        #expect(throws: ConfigurationError.self) { try Settings.networks("10.0.0.0/8, not-an-address", setting: "BULWARK_TRUSTED_PROXIES") }
        #expect(throws: ConfigurationError.self) { try Settings.outboundPolicy("127.0.0.1:99999") }
        #expect(try Settings.networks("", setting: "X").isEmpty)
    }
}
