@testable import BulwarkApp
import Fluent
import Testing
import Vapor

/// Items 3, 7 and 10: guessing passwords and codes, and the session cookie's flags.
@Suite struct SignInHardeningTests {
    private func login(_ app: Application, _ email: String, _ password: String, peer: String = Application.testPeer) async throws -> TestResponse {
        try await app.send(.POST, "/api/auth/login", json: ["email": email, "password": password], peer: peer)
    }

    @Test func parallelWrongGuessesEachCount() async throws {
        try await withBulwark(adjust: { $0.loginMaxFailures = 5; $0.loginLockout = 900 }) { app in
            let tenant = try await Factory.tenant(app)
            let email = tenant.admin.email
            let statuses = try await withThrowingTaskGroup(of: HTTPStatus.self) { group in
                for _ in 0..<5 { group.addTask { try await login(app, email, "wrong-guess") .status } }
                return try await group.reduce(into: [HTTPStatus]()) { $0.append($1) }
            }
            #expect(statuses.allSatisfy { $0 == .unauthorized || $0 == .tooManyRequests })
            // Five guesses at once locked the account, even the right password is refused now.
            expectError(try await login(app, email, "password123"), .tooManyRequests, "RATE_LIMITED")
            #expect(try await User.find(tenant.admin.id, on: app.db)?.lockedUntil != nil)
            #expect(try await AuditEntry.query(on: app.db).filter(\.$action == "auth.login_failed").count() == 5)
        }
    }

    @Test func everyPathCostsOnePasswordCheck() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock, adjust: { $0.loginMaxFailures = 2 }) { app in
            let tenant = try await Factory.tenant(app)
            let noPassword = try await Factory.user(app, company: tenant.company, client: tenant.client, password: nil)
            let locked = try await Factory.user(app, in: tenant, email: "locked@acme.test")
            for _ in 0..<2 { _ = try await login(app, locked.email, "wrong-guess") }
            func checks(_ request: () async throws -> TestResponse) async throws -> (Int, HTTPStatus) {
                let before = app.signInState.passwordChecks.withLockedValue { $0 }
                let status = try await request().status
                return (app.signInState.passwordChecks.withLockedValue { $0 } - before, status)
            }
            #expect(try await checks { try await login(app, tenant.admin.email, "wrong-guess") } == (1, .unauthorized))
            #expect(try await checks { try await login(app, "nobody@acme.test", "wrong-guess") } == (1, .unauthorized))
            #expect(try await checks { try await login(app, noPassword.email, "wrong-guess") } == (1, .unauthorized))
            #expect(try await checks { try await login(app, locked.email, "password123") } == (1, .tooManyRequests))
        }
    }

    @Test func dashboardSignInIsLimitedPerAddressAndPerAccount() async throws {
        try await withBulwark(clock: ManualClock(), adjust: { $0.rateLimits[.auth] = RateLimitRule(limit: 3, window: 900); $0.loginMaxFailures = 100 }) { app in
            let tenant = try await Factory.tenant(app)
            func form(_ email: String, peer: String) async throws -> HTTPStatus {
                try await app.send(.POST, "/login", body: "email=\(email)&password=wrong-guess", contentType: .urlEncodedForm, peer: peer).status
            }
            // Per address: a fourth form post from one address is refused, whichever account it tries.
            for index in 0..<3 { #expect(try await form("someone\(index)@acme.test", peer: "198.51.100.1") == .unauthorized) }
            #expect(try await form("someone9@acme.test", peer: "198.51.100.1") == .tooManyRequests)
            #expect(try await app.send(.POST, "/login/totp", body: "pending=x&code=1", contentType: .urlEncodedForm,
                                       peer: "198.51.100.1").status == .tooManyRequests)
            // Per account: guesses at one account from many addresses run out too, on the form and the API alike.
            for index in 0..<2 { #expect(try await form(tenant.admin.email, peer: "198.51.100.\(10 + index)") == .unauthorized) }
            #expect(try await login(app, tenant.admin.email, "wrong-guess", peer: "198.51.100.20").status == .unauthorized)
            #expect(try await form(tenant.admin.email, peer: "198.51.100.30") == .tooManyRequests)
        }
    }

    @Test func aTOTPCodeWorksOnce() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let tenant = try await Factory.tenant(app)
            let secret = try #require(JSON(try await app.send(.POST, "/api/auth/totp/setup", token: tenant.token))["data"]["secret"].string)
            let enableCode = try #require(TOTP.code(secret: secret, at: clock.now()))
            #expect(try await app.send(.POST, "/api/auth/totp/enable", token: tenant.token, json: ["code": enableCode]).status == .ok)
            // The code that enabled two-factor sign-in cannot also sign in.
            let replayEnable = try await app.send(.POST, "/api/auth/login", json: [
                "email": tenant.admin.email, "password": "password123", "totpCode": enableCode])
            expectError(replayEnable, .unauthorized, "UNAUTHORIZED")
            clock.advance(by: 30)
            let code = try #require(TOTP.code(secret: secret, at: clock.now()))
            let body: [String: Any] = ["email": tenant.admin.email, "password": "password123", "totpCode": code]
            #expect(try await app.send(.POST, "/api/auth/login", json: body).status == .ok)
            clock.advance(by: 20) // still inside the code's window
            expectError(try await app.send(.POST, "/api/auth/login", json: body), .unauthorized, "UNAUTHORIZED")
        }
    }

    @Test func wrongCodesWhileEnrollingCountAsFailedSignIns() async throws {
        try await withBulwark(adjust: { $0.loginMaxFailures = 3 }) { app in
            let tenant = try await Factory.tenant(app)
            _ = try await app.send(.POST, "/api/auth/totp/setup", token: tenant.token)
            for _ in 0..<3 {
                expectError(try await app.send(.POST, "/api/auth/totp/enable", token: tenant.token, json: ["code": "000000"]),
                            .unprocessableEntity, "VALIDATION_ERROR")
            }
            expectError(try await app.send(.POST, "/api/auth/totp/enable", token: tenant.token, json: ["code": "000000"]),
                        .tooManyRequests, "RATE_LIMITED")
            #expect(try await User.find(tenant.admin.id, on: app.db)?.lockedUntil != nil)
        }
    }

    @Test func sessionCookiesAreSecureWheneverThePublicAddressIsHTTPS() async throws {
        try await withBulwark(adjust: { $0.publicBaseURL = "https://bulwark.example.test" }) { app in
            #expect(app.settings.insecureCookiesAllowed, "the testing environment alone would allow plain cookies")
            let tenant = try await Factory.tenant(app)
            let response = try await login(app, tenant.admin.email, "password123")
            #expect(response.headers.setCookie?[PrincipalAuthenticator.cookieName]?.isSecure == true)
        }
        try await withBulwark(adjust: { $0.publicBaseURL = "http://127.0.0.1:8080" }) { app in
            let tenant = try await Factory.tenant(app)
            let response = try await login(app, tenant.admin.email, "password123")
            #expect(response.headers.setCookie?[PrincipalAuthenticator.cookieName]?.isSecure == false)
        }
    }
}
