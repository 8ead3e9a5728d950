@testable import BulwarkApp
import NIOConcurrencyHelpers
import NIOCore
import Testing
import Vapor

/// Item 5: a tenant cannot aim the server at internal services, and a connection test says what failed in Bulwark's
/// words, never in the remote service's.
@Suite struct OutboundGuardTests {
    private func profile(_ app: Application, _ tenant: TestTenant, host: String, port: Int) async throws -> String {
        let created = try await app.send(.POST, "/api/v1/phishing/sending-profiles", token: tenant.token, json: [
            "name": "Target \(host)", "host": host, "port": port, "security": "none", "envelope_from": "bounces@acme.test",
        ])
        #expect(created.status == .created)
        return try #require(JSON(created)["data"]["id"].string)
    }

    private func test(_ app: Application, _ tenant: TestTenant, _ profileID: String) async throws -> JSON {
        let response = try await app.send(.POST, "/api/v1/phishing/sending-profiles/\(profileID)/test", token: tenant.token,
                                          json: ["to": "someone@acme.test"])
        #expect(response.status == .ok)
        return JSON(response)["data"]
    }

    @Test func internalTargetsAreRefusedBeforeAnyConnection() async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        try await withBulwark(adjust: { $0.outbound = .denyAll }) { app in
            let tenant = try await Factory.tenant(app)
            let cases: [(String, Int, String)] = [
                ("127.0.0.1", fixture.port, "loopback"), ("169.254.169.254", 25, "cloud metadata"), ("10.1.2.3", 25, "private"),
                ("[::1]", fixture.port, "loopback"), ("192.168.1.10", 587, "private"),
            ]
            for (host, port, reason) in cases {
                let result = try await test(app, tenant, try await profile(app, tenant, host: host, port: port))
                #expect(result["delivered"].bool == false)
                #expect(result["stage"].string == "target_refused", "\(host)")
                // The tenant learns that it is refused, not what the address is or why (the operator's log says).
                #expect(result["detail"].string == "target refused: \(OutboundRefused.publicDescription)")
                #expect(result["detail"].string?.contains(reason) == false)
                #expect(result["outcome"].string == "temporary_failure")
            }
            #expect(fixture.connections == 0)
        }
        await fixture.stop()
    }

    @Test func aNameThatResolvesInsideIsRefusedOnEveryConnection() async throws {
        try await withBulwark(adjust: { $0.outbound = .denyAll }) { app in
            let answers = NIOLockedValueBox(["93.184.216.34"])
            app.outboundGuard = OutboundGuard(policy: .denyAll, resolve: { _, port in
                try answers.withLockedValue { try $0.map { try SocketAddress(ipAddress: $0, port: port) } }
            })
            let tenant = try await Factory.tenant(app)
            let id = try await profile(app, tenant, host: "relay.rebinding.test", port: 25)
            // Saved while it pointed outside; checked again when used, after the name moved inside.
            answers.withLockedValue { $0 = ["93.184.216.34", "10.0.0.5"] }
            let result = try await test(app, tenant, id)
            #expect(result["stage"].string == "target_refused")
            #expect(result["detail"].string?.contains("10.0.0.5") == false, "nothing about the server's own network")
        }
    }

    @Test func theOperatorCanAllowALocalRelay() async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        try await withBulwark(adjust: { $0.outbound = try! OutboundPolicy(allowList: "127.0.0.1:\(fixture.port)") }) { app in
            let tenant = try await Factory.tenant(app)
            let allowed = try await test(app, tenant, try await profile(app, tenant, host: "127.0.0.1", port: fixture.port))
            #expect(allowed["delivered"].bool == true)
            #expect(fixture.messages.count == 1)
            // Only that port.
            let other = try await test(app, tenant, try await profile(app, tenant, host: "127.0.0.1", port: fixture.port + 1))
            #expect(other["stage"].string == "target_refused")
        }
        await fixture.stop()
    }

    @Test func failuresAreNamedWithoutTheRemoteServicesWords() async throws {
        let banner = try SMTPFixture(greeting: "554 internal-secret-banner host=db01.corp")
        try await banner.start()
        let authenticating = try SMTPFixture(credentials: ("user", "right-password"))
        try await authenticating.start()
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let refused = try await test(app, tenant, try await profile(app, tenant, host: "127.0.0.1", port: banner.port))
            #expect(refused["stage"].string == "greeting")
            #expect(refused["outcome"].string == "permanent_failure")
            #expect(refused["detail"].string?.contains("554") == true)
            #expect(refused["detail"].string?.contains("secret") == false)
            #expect(refused["detail"].string?.contains("db01") == false)

            let profileID = try await profile(app, tenant, host: "127.0.0.1", port: authenticating.port)
            _ = try await app.send(.PUT, "/api/v1/phishing/sending-profiles/\(profileID)", token: tenant.token,
                                   json: ["username": "user", "password": "wrong-password"])
            let badLogin = try await test(app, tenant, profileID)
            #expect(badLogin["stage"].string == "authentication")
            #expect(badLogin["detail"].string == "authentication failed (535 5.7.8)")

            let closed = try await test(app, tenant, try await profile(app, tenant, host: "127.0.0.1", port: 1))
            #expect(closed["stage"].string == "connect")
            #expect(closed["detail"].string?.contains("refused") == true)
        }
        await banner.stop()
        await authenticating.stop()
    }
}
