@testable import BulwarkApp
import Fluent
import Testing
import Vapor

/// Item 1 of the hardening issue: user-written Markdown reaches pages only through the sanitiser, pages forbid inline
/// script, and a cookie alone cannot make a state-changing API call from another site.
@Suite struct PagesHardeningTests {
    static let hostileLesson = """
        Read **carefully**.

        ![x](x"onerror="alert(document.domain))

        [tab](java\tscript:alert(1)) [entity](&#106;avascript:alert(2)) [ok](https://example.test/guide)

        <img src=x onerror=alert(3)><script>alert(4)</script>
        """

    @Test func hostileLessonMarkdownRendersWithoutScriptInTheAPIAndOnTheLessonPage() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let module = try await app.send(.POST, "/api/v1/modules", token: tenant.token, json: [
                "title": "Visitors", "category": "physical_security", "lessons": [["title": "Signing in", "body": Self.hostileLesson]],
            ])
            #expect(module.status == .created)
            let html = try #require(JSON(module)["data"]["lessons"][0]["body_html"].string)
            for forbidden in ["onerror", "javascript", "<script", "alert(3)", "alert(4)"] {
                #expect(!html.lowercased().contains(forbidden), "found \(forbidden) in \(html)")
            }
            #expect(html.contains("<strong>carefully</strong>"))
            #expect(html.contains(#"href="https://example.test/guide""#))

            // The learner's lesson page shows the same sanitised HTML under a policy that forbids inline script.
            let moduleModel = try #require(try await TrainingModule.find(UUID(uuidString: JSON(module)["data"]["id"].string!), on: app.db))
            let learner = try await Factory.user(app, in: tenant, email: "reader@acme.test")
            _ = try await TrainingFactory.campaign(app, tenant: tenant, modules: [moduleModel])
            let assignment = JSON(try await app.send(.GET, "/api/v1/me/assignments", token: try await Factory.token(app, for: learner)))
            let id = try #require(assignment["data"][0]["id"].string)
            let page = try await app.send(.GET, "/learn/\(id)", headers: try await signInCookie(app, email: learner.email))
            #expect(page.status == .ok)
            let body = page.body.string.lowercased()
            #expect(body.contains("carefully"))
            #expect(!body.contains("onerror") && !body.contains("javascript:") && !body.contains("<script>alert"))
            let policy = try #require(page.headers.first(name: "Content-Security-Policy"))
            for directive in ["default-src 'self'", "script-src 'self'", "object-src 'none'", "base-uri 'none'", "frame-ancestors 'none'"] {
                #expect(policy.contains(directive))
            }
            #expect(!policy.contains("unsafe-inline"))
        }
    }

    @Test func dashboardPagesAndErrorPagesCarryThePolicyAndTheLandingPageKeepsItsSandbox() async throws {
        try await withBulwark { app in
            #expect(try await app.send(.GET, "/login").headers.first(name: "Content-Security-Policy")?.contains("script-src 'self'") == true)
            let missing = try await app.send(.GET, "/no-such-page")
            #expect(missing.headers.first(name: "Content-Security-Policy")?.contains("default-src 'self'") == true)
            // Views hold no inline script or style for the policy to break.
            let views = try FileManager.default.contentsOfDirectory(atPath: app.directory.viewsDirectory)
            for view in views where view.hasSuffix(".leaf") {
                let text = try String(contentsOfFile: app.directory.viewsDirectory + view, encoding: .utf8)
                #expect(!text.contains("style=\"") && !text.contains("<style") && !text.contains("onclick="), "\(view)")
                #expect(!text.contains("<script>"), "\(view)")
            }
        }
    }

    @Test func aCookieAloneCannotChangeThingsThroughTheAPIFromAnotherSite() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let cookie = try await signInCookie(app, email: tenant.admin.email)
            let body: [String: Any] = ["first_name": "Cross", "last_name": "Site", "email": "cross@acme.test"]

            // No proof of origin: refused, and nothing was created.
            expectError(try await app.send(.POST, "/api/v1/users", json: body, headers: cookie), .forbidden, "FORBIDDEN")
            var foreign = cookie
            foreign.replaceOrAdd(name: .origin, value: "https://evil.example")
            expectError(try await app.send(.POST, "/api/v1/users", json: body, headers: foreign), .forbidden, "FORBIDDEN")
            #expect(try await User.query(on: app.db).filter(\.$email == "cross@acme.test").count() == 0)

            // Reads stay open to the cookie; our own origin or the session's CSRF token may write.
            #expect(try await app.send(.GET, "/api/v1/users", headers: cookie).status == .ok)
            var sameOrigin = cookie
            sameOrigin.replaceOrAdd(name: .origin, value: app.settings.publicBaseURL)
            #expect(try await app.send(.POST, "/api/v1/users", json: body, headers: sameOrigin).status == .created)
            let page = try await app.send(.GET, "/profile", headers: cookie).body.string
            let marker = "name=\"_csrf\" value=\""
            let start = try #require(page.range(of: marker)).upperBound
            var withToken = cookie
            withToken.replaceOrAdd(name: CrossSiteCheck.header, value: String(page[start...].prefix { $0 != "\"" }))
            let second = try await app.send(.POST, "/api/v1/users", json: ["first_name": "T", "last_name": "K", "email": "tk@acme.test"],
                                            headers: withToken)
            #expect(second.status == .created)
            // A bearer token is not sent by browsers on their own: no origin check.
            let bearer = try await app.send(.POST, "/api/v1/users", token: tenant.token,
                                            json: ["first_name": "B", "last_name": "T", "email": "bt@acme.test"])
            #expect(bearer.status == .created)
            // Public routes ignore the cookie: reporting a simulation from a mail client's button still works.
            let report = try await app.send(.POST, "/api/phishing/report/unknown-token-123456", headers: foreign)
            expectError(report, .notFound, "NOT_FOUND")
        }
    }
}
