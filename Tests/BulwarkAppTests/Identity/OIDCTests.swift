@testable import BulwarkApp
import JWTKit
import Testing
import Vapor
import VaporTesting

/// Tokens from an external OpenID Connect issuer, verified against a JWKS served by a local HTTP server.
@Suite struct OIDCTests {
    static let issuer = "https://idp.example.test"

    /// Runs a local JWKS endpoint publishing `key`'s public half under `kid`.
    private func withJWKSServer<T>(_ key: ES256PrivateKey, kid: String, _ body: (String) async throws -> T) async throws -> T {
        let server = try await Application.make(.testing)
        server.http.server.configuration.hostname = "127.0.0.1"
        server.http.server.configuration.port = 0
        let parameters = try #require(key.parameters)
        let jwks = #"{"keys":[{"kty":"EC","crv":"P-256","alg":"ES256","use":"sig","kid":"\#(kid)","x":"\#(parameters.x)","y":"\#(parameters.y)"}]}"#
        server.get("jwks.json") { _ in jwks }
        try server.server.start()
        let port = try #require(server.http.server.shared.localAddress?.port)
        do {
            let result = try await body("http://127.0.0.1:\(port)/jwks.json")
            await server.server.shutdown()
            try await server.asyncShutdown()
            return result
        } catch {
            await server.server.shutdown()
            try? await server.asyncShutdown()
            throw error
        }
    }

    private func token(_ key: ES256PrivateKey, kid: String, email: String, audience: String = "bulwark",
                       expires: Date = Date().addingTimeInterval(600)) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: key, kid: JWKIdentifier(string: kid))
        let payload = OIDCPayload(iss: .init(value: Self.issuer), sub: .init(value: "idp|123"), aud: .init(value: [audience]),
                                  exp: .init(value: expires), email: email)
        return try await keys.sign(payload, kid: JWKIdentifier(string: kid))
    }

    @Test func acceptsTokensOfTheConfiguredIssuerForKnownUsers() async throws {
        let key = ES256PrivateKey()
        try await withJWKSServer(key, kid: "idp-key-1") { jwksURL in
            try await withBulwark(adjust: {
                $0.oidc = .init(issuer: Self.issuer, audience: "bulwark", jwksURL: jwksURL)
            }) { app in
                let tenant = try await Factory.tenant(app)
                let valid = try await token(key, kid: "idp-key-1", email: tenant.admin.email.uppercased())
                let me = try await app.send(.GET, "/api/v3/auth/user", token: valid)
                #expect(me.status == .ok)
                #expect(JSON(me)["data"]["email"].string == tenant.admin.email)

                let wrongAudience = try await token(key, kid: "idp-key-1", email: tenant.admin.email, audience: "someone-else")
                expectError(try await app.send(.GET, "/api/v3/auth/user", token: wrongAudience), .unauthorized, "UNAUTHORIZED")
                let stranger = try await token(key, kid: "idp-key-1", email: "nobody@example.test")
                expectError(try await app.send(.GET, "/api/v3/auth/user", token: stranger), .unauthorized, "UNAUTHORIZED")
                let expired = try await token(key, kid: "idp-key-1", email: tenant.admin.email, expires: Date().addingTimeInterval(-60))
                expectError(try await app.send(.GET, "/api/v3/auth/user", token: expired), .unauthorized, "UNAUTHORIZED")
                let forged = try await token(ES256PrivateKey(), kid: "idp-key-1", email: tenant.admin.email)
                expectError(try await app.send(.GET, "/api/v3/auth/user", token: forged), .unauthorized, "UNAUTHORIZED")
            }
        }
    }

    @Test func externalTokensAreIgnoredWhenNoIssuerIsConfigured() async throws {
        let key = ES256PrivateKey()
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let external = try await token(key, kid: "idp-key-1", email: tenant.admin.email)
            expectError(try await app.send(.GET, "/api/v3/auth/user", token: external), .unauthorized, "UNAUTHORIZED")
        }
    }
}
