@testable import BulwarkApp
import Fluent
import Testing
import Vapor
import VaporTesting

/// The dashboard through HTTP: session cookie, CSRF on forms, role-based navigation, form errors.
@Suite struct DashboardTests {
    /// Signs in through the form and returns the session cookie header.
    private func signIn(_ app: Application, email: String, password: String = "password123") async throws -> HTTPHeaders {
        let response = try await app.send(.POST, "/login", body: "email=\(email)&password=\(password)",
                                           contentType: .urlEncodedForm)
        #expect(response.status == .seeOther)
        let cookie = try #require(response.headers.setCookie?[PrincipalAuthenticator.cookieName])
        var headers = HTTPHeaders()
        headers.cookie = HTTPCookies(dictionaryLiteral: (PrincipalAuthenticator.cookieName, .init(string: cookie.string)))
        return headers
    }

    private func csrf(in page: String) throws -> String {
        let marker = "name=\"_csrf\" value=\""
        let start = try #require(page.range(of: marker)).upperBound
        return String(page[start...].prefix { $0 != "\"" })
    }

    @Test func signedOutVisitorsAreRedirectedToSignIn() async throws {
        try await withBulwark { app in
            let response = try await app.send(.GET, "/users")
            #expect(response.status == .seeOther)
            #expect(response.headers.first(name: .location) == "/login")
            #expect(try await app.send(.GET, "/login").body.string.contains("name=\"password\""))
        }
    }

    @Test func wrongPasswordReRendersTheFormWithAnError() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let response = try await app.send(.POST, "/login", body: "email=\(tenant.admin.email)&password=nope-nope",
                                              contentType: .urlEncodedForm)
            #expect(response.status == .unauthorized)
            #expect(response.body.string.contains("Invalid email or password"))
        }
    }

    @Test func navigationFollowsTheRole() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let learner = try await Factory.user(app, in: tenant, email: "learner@acme.test")
            let adminHome = try await app.send(.GET, "/dashboard", headers: try await signIn(app, email: tenant.admin.email))
            #expect(adminHome.body.string.contains("href=\"/users\""))
            let learnerHome = try await app.send(.GET, "/dashboard", headers: try await signIn(app, email: learner.email))
            #expect(learnerHome.status == .ok)
            #expect(!learnerHome.body.string.contains("href=\"/users\""))
            let forbidden = try await app.send(.GET, "/users", headers: try await signIn(app, email: learner.email))
            #expect(forbidden.status == .forbidden)
            #expect(forbidden.headers.contentType == .html)
        }
    }

    @Test func formsNeedTheSessionsCSRFToken() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let headers = try await signIn(app, email: tenant.admin.email)
            let body = "firstName=Fay&lastName=Form&email=fay@acme.test&role=company_user&status=active"
            let withoutToken = try await app.send(.POST, "/users", body: body, contentType: .urlEncodedForm, headers: headers)
            #expect(withoutToken.status == .forbidden)
            let token = try csrf(in: try await app.send(.GET, "/users/new", headers: headers).body.string)
            let encoded = token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? token
            let created = try await app.send(.POST, "/users", body: body + "&_csrf=\(encoded)", contentType: .urlEncodedForm, headers: headers)
            #expect(created.status == .seeOther)
            #expect(try await User.query(on: app.db).filter(\.$email == "fay@acme.test").first()?.$client.id == tenant.client.id)

            let invalid = try await app.send(.POST, "/users", body: "firstName=&lastName=&email=bad&_csrf=\(encoded)",
                                             contentType: .urlEncodedForm, headers: headers)
            #expect(invalid.status == .unprocessableEntity)
            #expect(invalid.body.string.contains("The email must be a valid email address."))
        }
    }

    @Test func editingAnotherTenantsUserAnswers404() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let other = try await Factory.tenant(app, name: "Other")
            let stranger = try await Factory.user(app, in: other)
            let response = try await app.send(.GET, "/users/\(stranger.id!)/edit", headers: try await signIn(app, email: tenant.admin.email))
            #expect(response.status == .notFound)
        }
    }

    @Test func signOutEndsTheSession() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let headers = try await signIn(app, email: tenant.admin.email)
            let token = try csrf(in: try await app.send(.GET, "/dashboard", headers: headers).body.string)
            let encoded = token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? token
            let out = try await app.send(.POST, "/logout", body: "_csrf=\(encoded)", contentType: .urlEncodedForm, headers: headers)
            #expect(out.status == .seeOther)
            #expect(try await app.send(.GET, "/dashboard", headers: headers).headers.first(name: .location) == "/login")
        }
    }

    @Test func totpStepDuringSignIn() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let tenant = try await Factory.tenant(app)
            let secret = TOTP.makeSecret()
            tenant.admin.totpSecret = try app.secretBox.seal(secret)
            tenant.admin.totpEnabled = true
            try await tenant.admin.save(on: app.db)
            let step = try await app.send(.POST, "/login", body: "email=\(tenant.admin.email)&password=password123",
                                          contentType: .urlEncodedForm)
            let page = step.body.string
            #expect(page.contains("name=\"code\""))
            #expect(!page.contains("password123"))
            let marker = "name=\"pending\" value=\""
            let start = try #require(page.range(of: marker)).upperBound
            let pending = String(page[start...].prefix { $0 != "\"" })
            let code = try #require(TOTP.code(secret: secret, at: clock.now()))
            let done = try await app.send(.POST, "/login/totp", body: "pending=\(pending)&code=\(code)", contentType: .urlEncodedForm)
            #expect(done.status == .seeOther)
            #expect(done.headers.setCookie?[PrincipalAuthenticator.cookieName] != nil)
            let wrong = try await app.send(.POST, "/login/totp", body: "pending=\(pending)&code=000000", contentType: .urlEncodedForm)
            #expect(wrong.status == .unauthorized)
        }
    }

    @Test func phishingPagesLaunchAndShowResults() async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            try await Factory.user(app, in: tenant, email: "mark@acme.test")
            let profile = try await PhishingFactory.profile(app, tenant: tenant, fixture: fixture)
            let template = try await PhishingFactory.builtinTemplate(app)
            let headers = try await signIn(app, email: tenant.admin.email)
            let overview = try await app.send(.GET, "/phishing", headers: headers)
            #expect(overview.body.string.contains("<svg"))
            let token = try csrf(in: overview.body.string).addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let launched = try await app.send(.POST, "/phishing/campaigns",
                                              body: "_csrf=\(token)&name=Dash&template=\(template.id!)&profile=\(profile)&window_hours=0",
                                              contentType: .urlEncodedForm, headers: headers)
            #expect(launched.status == .seeOther)
            let location = try #require(launched.headers.first(name: .location)?.split(separator: "?").first.map(String.init))
            let page = try await app.send(.GET, location, headers: headers)
            #expect(page.body.string.contains("mark@acme.test"))
            #expect(page.body.string.contains("http-equiv=\"refresh\""), "live progress while sending, without JavaScript")
            let invalid = try await app.send(.POST, "/phishing/campaigns", body: "_csrf=\(token)&name=", contentType: .urlEncodedForm, headers: headers)
            #expect(invalid.status == .unprocessableEntity)
            let templates = try await app.send(.GET, "/phishing/templates", headers: headers)
            #expect(templates.body.string.contains("sandbox=\"\""))
        }
        await fixture.stop()
    }
}
