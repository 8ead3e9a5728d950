@testable import BulwarkApp
import Fluent
import Testing
import Vapor
import VaporTesting

@Suite struct PhishingTemplatesTests {
    static var valid: [String: Any] { [
        "name": "Canteen survey", "category": "other", "subject": "Win lunch, {{first_name}}!", "sender_name": "Canteen team",
        "sender_email": "canteen@acme-surveys.test", "html": "<p>Hi {{first_name}}, <a href=\"{{url}}\">take the survey</a></p>{{tracking_pixel}}",
        "landing_html": "<form method=\"post\" action=\"{{url}}\"><input name=\"email\"></form>", "landing_fields": ["email"],
        "red_flags": ["Unknown sender"],
    ] }

    @Test func theLibraryHasTwentyTemplatesAcrossCategories() async throws {
        try await withBulwark { app in
            let builtins = try await PhishingTemplate.query(on: app.db).filter(\.$companyID == nil).all()
            #expect(builtins.count >= 20)
            #expect(Set(builtins.map(\.category)).isSuperset(of: ["credentials", "invoice", "delivery", "hr", "it_notice", "shared_file",
                                                                  "mfa_fatigue", "executive_request"]))
            #expect(builtins.allSatisfy { !$0.landingHTML.isEmpty && !$0.redFlags.isEmpty && $0.html.contains("{{url}}") })
            for template in builtins {
                _ = try TemplateRenderer.compile(template.html, field: "html")
                _ = try TemplateRenderer.compile(template.landingHTML, field: "landing_html")
            }
            let tenant = try await Factory.tenant(app)
            let list = JSON(try await app.send(.GET, "/api/v1/phishing/templates?category=mfa_fatigue", token: tenant.token))
            #expect(list["data"].array.count == 2)
        }
    }

    @Test func invalidMustacheAnswers422WithThePosition() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            var body = Self.valid
            body["html"] = "<p>Hello</p>\n<p>{{#first_name}} never closed</p>"
            let response = try await app.send(.POST, "/api/v1/phishing/templates", token: tenant.token, json: body)
            expectError(response, .badRequest, "VALIDATION_ERROR")
            let message = JSON(response)["error"]["details"]["html"][0].string ?? ""
            #expect(message.contains("line"))
            #expect(message.contains("column"))
            let missing = try await app.send(.POST, "/api/v1/phishing/templates", token: tenant.token, json: ["category": "cats"])
            #expect(JSON(missing)["error"]["details"].keys.isSuperset(of: ["name", "category", "subject", "sender_name", "sender_email", "html"]))
        }
    }

    @Test func previewIsPersonalisedAndSandboxed() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            var body = Self.valid
            body["html"] = "<p>Hi {{first_name}} from {{department}}</p><script>alert(1)</script>"
            let created = JSON(try await app.send(.POST, "/api/v1/phishing/templates", token: tenant.token, json: body))
            let id = try #require(created["data"]["id"].string)
            let preview = try await app.send(.GET, "/api/v1/phishing/templates/\(id)/preview", token: tenant.token)
            #expect(preview.headers.first(name: "Content-Security-Policy") == "sandbox")
            #expect(preview.body.string.contains("Hi Alex from Finance"))
            let landing = try await app.send(.GET, "/api/v1/phishing/templates/\(id)/preview?part=landing", token: tenant.token)
            #expect(landing.body.string.contains("<form"))
            expectError(try await app.send(.GET, "/api/v1/phishing/templates/\(id)/preview?part=pdf", token: tenant.token),
                        .badRequest, "VALIDATION_ERROR")
        }
    }

    @Test func builtInsAreReadOnlyAndCopied() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let builtin = try await PhishingFactory.builtinTemplate(app)
            expectError(try await app.send(.PUT, "/api/v1/phishing/templates/\(builtin.id!)", token: tenant.token, json: ["name": "x"]),
                        .forbidden, "FORBIDDEN")
            let copy = try await app.send(.POST, "/api/v1/phishing/templates", token: tenant.token,
                                          json: ["source_template_id": builtin.id!.uuidString, "name": "Our password notice"])
            #expect(copy.status == .created)
            #expect(JSON(copy)["data"]["subject"].string == builtin.subject)
            #expect(JSON(copy)["data"]["builtin"].bool == false)
        }
    }

    @Test func isolationAndPermissions() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let created = JSON(try await app.send(.POST, "/api/v1/phishing/templates", token: tenant.token, json: Self.valid))
            let id = try #require(created["data"]["id"].string)
            try await expectOtherTenantGets404(app, .GET, "/api/v1/phishing/templates/\(id)")
            try await expectOtherTenantGets404(app, .GET, "/api/v1/phishing/templates/\(id)/preview")
            try await expectOtherTenantGets404(app, .PUT, "/api/v1/phishing/templates/\(id)", json: ["name": "x"])
            try await expectOtherTenantGets404(app, .DELETE, "/api/v1/phishing/templates/\(id)")
            expectError(try await app.send(.GET, "/api/v1/phishing/templates"), .unauthorized, "UNAUTHORIZED")
            let learner = try await Factory.user(app, in: tenant)
            expectError(try await app.send(.GET, "/api/v1/phishing/templates", token: try await Factory.token(app, for: learner)),
                        .forbidden, "FORBIDDEN")
            #expect(try await app.send(.DELETE, "/api/v1/phishing/templates/\(id)", token: tenant.token).status == .ok)
            expectError(try await app.send(.GET, "/api/v1/phishing/templates/\(id)", token: tenant.token), .notFound, "NOT_FOUND")
        }
    }
}

@Suite struct SendingProfilesTests {
    @Test func passwordsAreSealedAndNeverReturned() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let created = try await app.send(.POST, "/api/v1/phishing/sending-profiles", token: tenant.token, json: [
                "name": "Relay", "host": "smtp.acme.test", "port": 587, "username": "relay", "password": "hunter2-secret",
                "envelope_from": "bounce@acme.test",
            ])
            #expect(created.status == .created)
            #expect(!created.body.string.contains("hunter2-secret"))
            #expect(JSON(created)["data"]["password_set"].bool == true)
            let stored = try await SendingProfile.query(on: app.db).first()
            #expect(stored?.passwordSealed != nil && stored?.passwordSealed != "hunter2-secret")
            #expect(try app.secretBox.open(stored!.passwordSealed!) == "hunter2-secret")
            let invalid = try await app.send(.POST, "/api/v1/phishing/sending-profiles", token: tenant.token, json: [
                "port": 70000, "security": "ssl3", "throttle_per_minute": 0, "headers": ["Bad Header": "x"],
            ])
            #expect(JSON(invalid)["error"]["details"].keys == ["name", "host", "port", "security", "envelope_from", "throttle_per_minute", "headers"])
            let id = try #require(JSON(created)["data"]["id"].string)
            try await expectOtherTenantGets404(app, .GET, "/api/v1/phishing/sending-profiles/\(id)")
            try await expectOtherTenantGets404(app, .POST, "/api/v1/phishing/sending-profiles/\(id)/test", json: ["to": "a@b.test"])
            expectError(try await app.send(.GET, "/api/v1/phishing/sending-profiles"), .unauthorized, "UNAUTHORIZED")
        }
    }

    @Test func testSendReachesTheServer() async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let id = try await PhishingFactory.profile(app, tenant: tenant, fixture: fixture)
            let result = JSON(try await app.send(.POST, "/api/v1/phishing/sending-profiles/\(id)/test", token: tenant.token, json: ["to": "it@acme.test"]))
            #expect(result["data"]["delivered"].bool == true)
            #expect(fixture.messages.first?.to == ["it@acme.test"])
            #expect(fixture.messages.first?.from == "bounces@sim.acme.test")
            expectError(try await app.send(.POST, "/api/v1/phishing/sending-profiles/\(id)/test", token: tenant.token, json: ["to": "nope"]),
                        .badRequest, "VALIDATION_ERROR")
        }
        await fixture.stop()
    }
}
