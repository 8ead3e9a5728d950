@testable import BulwarkApp
import Fluent
import Testing
import Vapor
import VaporTesting

@Suite struct RegistrationTests {
    @Test func registerCreatesCompanyClientAndAdmin() async throws {
        try await withBulwark { app in
            let response = try await app.send(.POST, "/api/auth/register", json: [
                "email": "Founder@Startup.test", "password": "longenough", "firstName": "Fay", "lastName": "Founder",
            ])
            #expect(response.status == .created)
            let data = JSON(response)["data"]
            #expect(data["user"]["email"].string == "founder@startup.test")
            #expect(data["user"]["firstName"].string == "Fay")
            #expect(data["user"]["role"].string == "msp_admin")
            #expect(data["token"].string != nil)
            #expect(response.headers.setCookie?[PrincipalAuthenticator.cookieName]?.isHTTPOnly == true)
            // The new account works straight away and sees exactly its own company with one client.
            let companies = JSON(try await app.send(.GET, "/api/v3/companies", token: data["token"].string))
            #expect(companies["data"].array.count == 1)
            #expect(companies["data"][0]["client_count"].int == 1)
            // As the company's administrator they can add clients and act on their first one.
            let companyID = try #require(companies["data"][0]["id"].string)
            let client = try await app.send(.POST, "/api/v3/companies/\(companyID)/clients", token: data["token"].string, json: ["name": "Second site"])
            #expect(client.status == .created)
            #expect(try await app.send(.GET, "/api/v1/users", token: data["token"].string).status == .ok)
        }
    }

    @Test func registerValidatesEveryField() async throws {
        try await withBulwark { app in
            let response = try await app.send(.POST, "/api/auth/register", json: ["email": "nope", "password": "short"])
            expectError(response, .unprocessableEntity, "VALIDATION_ERROR")
            #expect(JSON(response)["error"]["details"].keys == ["email", "password", "firstName", "lastName"])
        }
    }

    @Test func registerRejectsATakenEmail() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let response = try await app.send(.POST, "/api/auth/register", json: [
                "email": tenant.admin.email.uppercased(), "password": "longenough", "firstName": "A", "lastName": "B",
            ])
            expectError(response, .conflict, "CONFLICT")
        }
    }
}

@Suite struct LoginTests {
    @Test func loginIssuesTokenAndCookieThatBothWork() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let response = try await app.send(.POST, "/api/auth/login", json: ["email": tenant.admin.email, "password": "password123"])
            #expect(response.status == .ok)
            let token = try #require(JSON(response)["data"]["token"].string)
            #expect(JSON(try await app.send(.GET, "/api/v3/auth/user", token: token))["data"]["email"].string == tenant.admin.email)
            let cookie = try #require(response.headers.setCookie?[PrincipalAuthenticator.cookieName]?.string)
            var headers = HTTPHeaders()
            headers.cookie = HTTPCookies(dictionaryLiteral: (PrincipalAuthenticator.cookieName, .init(string: cookie)))
            let viaCookie = try await app.send(.GET, "/api/v3/auth/user", headers: headers)
            #expect(viaCookie.status == .ok)
            let user = try await User.find(tenant.admin.id, on: app.db)
            #expect(user?.lastLoginAt != nil)
        }
    }

    @Test func wrongPasswordAndUnknownEmailAnswerTheSame401() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let wrong = try await app.send(.POST, "/api/auth/login", json: ["email": tenant.admin.email, "password": "wrong-password"])
            let unknown = try await app.send(.POST, "/api/auth/login", json: ["email": "ghost@x.test", "password": "wrong-password"])
            expectError(wrong, .unauthorized, "UNAUTHORIZED")
            expectError(unknown, .unauthorized, "UNAUTHORIZED")
            #expect(JSON(wrong)["error"]["message"].string == JSON(unknown)["error"]["message"].string)
            let missing = try await app.send(.POST, "/api/auth/login", json: [:])
            expectError(missing, .unprocessableEntity, "VALIDATION_ERROR")
        }
    }

    @Test func repeatedFailuresLockTheAccountUntilTheLockoutPasses() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock, adjust: { $0.loginMaxFailures = 3; $0.loginLockout = 600 }) { app in
            let tenant = try await Factory.tenant(app)
            for _ in 0..<3 {
                _ = try await app.send(.POST, "/api/auth/login", json: ["email": tenant.admin.email, "password": "wrong-password"])
            }
            let locked = try await app.send(.POST, "/api/auth/login", json: ["email": tenant.admin.email, "password": "password123"])
            expectError(locked, .tooManyRequests, "RATE_LIMITED")
            #expect(locked.headers.first(name: "Retry-After") == "600")
            clock.advance(by: 601)
            let after = try await app.send(.POST, "/api/auth/login", json: ["email": tenant.admin.email, "password": "password123"])
            #expect(after.status == .ok)
            let failures = try await AuditEntry.query(on: app.db).filter(\.$action == "auth.login_failed").count()
            #expect(failures == 3)
        }
    }

    @Test func logoutRevokesTheToken() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let out = try await app.send(.POST, "/api/auth/logout", token: tenant.token)
            #expect(out.status == .ok)
            expectError(try await app.send(.GET, "/api/v3/auth/user", token: tenant.token), .unauthorized, "UNAUTHORIZED")
            expectError(try await app.send(.POST, "/api/auth/logout"), .unauthorized, "UNAUTHORIZED")
        }
    }

    @Test func expiredTokensAreRejected() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let tenant = try await Factory.tenant(app)
            clock.advance(by: 86_401)
            expectError(try await app.send(.GET, "/api/v3/auth/user", token: tenant.token), .unauthorized, "UNAUTHORIZED")
        }
    }

    @Test func forgedTokensAreRejected() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            var parts = tenant.token.split(separator: ".").map(String.init)
            parts[2] = String(parts[2].reversed())
            expectError(try await app.send(.GET, "/api/v3/auth/user", token: parts.joined(separator: ".")), .unauthorized, "UNAUTHORIZED")
        }
    }
}

@Suite struct TwoFactorTests {
    @Test func enrolThenLoginNeedsTheCode() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let tenant = try await Factory.tenant(app)
            let setup = JSON(try await app.send(.POST, "/api/auth/totp/setup", token: tenant.token))
            let secret = try #require(setup["data"]["secret"].string)
            #expect(setup["data"]["otpauthUri"].string?.hasPrefix("otpauth://totp/") == true)
            let bad = try await app.send(.POST, "/api/auth/totp/enable", token: tenant.token, json: ["code": "000000"])
            expectError(bad, .unprocessableEntity, "VALIDATION_ERROR")
            let code = try #require(TOTP.code(secret: secret, at: clock.now()))
            let enabled = try await app.send(.POST, "/api/auth/totp/enable", token: tenant.token, json: ["code": code])
            #expect(JSON(enabled)["data"]["totpEnabled"].bool == true)

            let withoutCode = try await app.send(.POST, "/api/auth/login", json: ["email": tenant.admin.email, "password": "password123"])
            expectError(withoutCode, .unauthorized, "UNAUTHORIZED")
            #expect(JSON(withoutCode)["error"]["details"]["totpCode"].exists)
            clock.advance(by: 30)
            let next = try #require(TOTP.code(secret: secret, at: clock.now()))
            let withCode = try await app.send(.POST, "/api/auth/login", json: [
                "email": tenant.admin.email, "password": "password123", "totpCode": next,
            ])
            #expect(withCode.status == .ok)
            let stored = try await User.find(tenant.admin.id, on: app.db)
            #expect(stored?.totpSecret != secret, "the secret is stored sealed, not in clear")
        }
    }

    @Test func setupNeedsAPrincipal() async throws {
        try await withBulwark { app in
            expectError(try await app.send(.POST, "/api/auth/totp/setup"), .unauthorized, "UNAUTHORIZED")
            expectError(try await app.send(.POST, "/api/auth/totp/enable", json: ["code": "1"]), .unauthorized, "UNAUTHORIZED")
            expectError(try await app.send(.POST, "/api/auth/totp/disable", json: ["code": "1"]), .unauthorized, "UNAUTHORIZED")
        }
    }
}
