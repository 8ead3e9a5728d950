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

    private func token(_ key: ES256PrivateKey, kid: String = "idp-key-1", email: String?, verified: Bool? = true,
                       subject: String = "idp|123", audience: String = "bulwark",
                       expires: Date = Date().addingTimeInterval(600)) async throws -> String {
        let keys = JWTKeyCollection()
        await keys.add(ecdsa: key, kid: JWKIdentifier(string: kid))
        let payload = OIDCPayload(iss: .init(value: Self.issuer), sub: .init(value: subject), aud: .init(value: [audience]),
                                  exp: .init(value: expires), email: email, emailVerified: verified)
        return try await keys.sign(payload, kid: JWKIdentifier(string: kid))
    }

    /// Runs `body` against a Bulwark that accepts the local issuer's tokens.
    private func withIssuer(_ body: @escaping (Application, ES256PrivateKey) async throws -> Void) async throws {
        let key = ES256PrivateKey()
        try await withJWKSServer(key, kid: "idp-key-1") { jwksURL in
            try await withBulwark(adjust: {
                $0.oidc = .init(issuer: Self.issuer, audience: "bulwark", jwksURL: jwksURL)
            }) { app in try await body(app, key) }
        }
    }

    private func status(_ app: Application, _ token: String) async throws -> HTTPStatus {
        try await app.send(.GET, "/api/v3/auth/user", token: token).status
    }

    @Test func acceptsVerifiedTokensOfTheConfiguredIssuerAndLinksTheAccount() async throws {
        try await withIssuer { app, key in
            let tenant = try await Factory.tenant(app)
            let valid = try await token(key, email: tenant.admin.email.uppercased())
            let me = try await app.send(.GET, "/api/v3/auth/user", token: valid)
            #expect(me.status == .ok)
            #expect(JSON(me)["data"]["email"].string == tenant.admin.email)
            let link = try #require(try await IdentityLink.query(on: app.db).first())
            #expect(link.$user.id == tenant.admin.id && link.issuer == Self.issuer && link.subject == "idp|123")

            // Afterwards the link decides, not the email claim: the same subject with another email still signs in.
            #expect(try await status(app, try await token(key, email: "renamed@elsewhere.test", verified: false)) == .ok)

            let wrongAudience = try await token(key, email: tenant.admin.email, audience: "someone-else")
            #expect(try await status(app, wrongAudience) == .unauthorized)
            let expired = try await token(key, email: tenant.admin.email, expires: Date().addingTimeInterval(-60))
            #expect(try await status(app, expired) == .unauthorized)
            let forged = try await token(ES256PrivateKey(), email: tenant.admin.email)
            #expect(try await status(app, forged) == .unauthorized)
        }
    }

    @Test func anUnverifiedEmailNeverSignsAnyoneIn() async throws {
        try await withIssuer { app, key in
            let tenant = try await Factory.tenant(app)
            #expect(try await status(app, try await token(key, email: tenant.admin.email, verified: false)) == .unauthorized)
            #expect(try await status(app, try await token(key, email: tenant.admin.email, verified: nil)) == .unauthorized)
            #expect(try await status(app, try await token(key, email: "nobody@example.test")) == .unauthorized)
            #expect(try await IdentityLink.query(on: app.db).count() == 0)
        }
    }

    @Test func aSecondSubjectCannotClaimALinkedAccount() async throws {
        try await withIssuer { app, key in
            let tenant = try await Factory.tenant(app)
            #expect(try await status(app, try await token(key, email: tenant.admin.email, subject: "idp|first")) == .ok)
            #expect(try await status(app, try await token(key, email: tenant.admin.email, subject: "idp|second")) == .unauthorized)
            #expect(try await IdentityLink.query(on: app.db).count() == 1)
        }
    }

    @Test func onlyPeopleOfTheIssuersCompanyAndNeverAnUnlinkedSuperAdmin() async throws {
        try await withIssuer { app, key in
            let home = try await Factory.tenant(app, name: "Home")
            let other = try await Factory.tenant(app, name: "Other")
            // The issuer belongs to the first company (no BULWARK_OIDC_COMPANY_ID): the other company's people are out.
            #expect(try await status(app, try await token(key, email: other.admin.email, subject: "idp|other")) == .unauthorized)
            let root = try await Factory.user(app, company: home.company, client: nil, role: .superAdmin, email: "root@home.test")
            #expect(try await status(app, try await token(key, email: root.email, subject: "idp|root")) == .unauthorized)
            #expect(try await IdentityLink.query(on: app.db).count() == 0)
        }
    }

    @Test func logoutUserRevokesAnExternalTokenUntilItExpires() async throws {
        try await withIssuer { app, key in
            let tenant = try await Factory.tenant(app)
            let external = try await token(key, email: tenant.admin.email)
            #expect(try await status(app, external) == .ok)
            let out = try await app.send(.GET, "/api/v3/auth/logout-user", token: external)
            #expect(out.status == .ok)
            #expect(JSON(out)["success"].bool == true)
            #expect(JSON(out)["message"].string == "User logged out successfully")
            #expect(try await status(app, external) == .unauthorized)
            // Another token of the same person still works: only the presented one is revoked.
            #expect(try await status(app, try await token(key, email: tenant.admin.email, expires: Date().addingTimeInterval(900))) == .ok)
        }
    }

    @Test func externalTokensAreIgnoredWhenNoIssuerIsConfigured() async throws {
        let key = ES256PrivateKey()
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let external = try await token(key, email: tenant.admin.email)
            expectError(try await app.send(.GET, "/api/v3/auth/user", token: external), .unauthorized, "UNAUTHORIZED")
        }
    }
}
