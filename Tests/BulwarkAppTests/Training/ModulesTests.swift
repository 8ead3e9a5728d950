@testable import BulwarkApp
import Fluent
import Testing
import Vapor
import VaporTesting

@Suite struct ModulesTests {
    static var validModule: [String: Any] { [
        "title": "Our visitor policy", "category": "physical_security", "difficulty": "beginner", "estimated_minutes": 5,
        "pass_mark": 50,
        "lessons": [["title": "Signing in", "body": "Every visitor **signs in**.\n\n<script>alert(1)</script> [x](javascript:alert(1))"]],
        "questions": [["prompt": "Who signs in?", "kind": "single", "options": ["Visitors", "Nobody"], "correct_answers": [0],
                       "explanation": "Everyone who visits."]],
    ] }

    @Test func theBuiltInLibraryIsComplete() async throws {
        try await withBulwark { app in
            let modules = try await TrainingModule.query(on: app.db).filter(\.$companyID == nil).all()
            #expect(modules.count >= 12)
            #expect(modules.allSatisfy { $0.lessons.count >= 3 && $0.questions.count >= 6 })
            #expect(Set(modules.map(\.category)).count >= 12)
            let tenant = try await Factory.tenant(app)
            let list = JSON(try await app.send(.GET, "/api/v1/modules?builtin=true&per_page=100", token: tenant.token))
            #expect(list["pagination"]["total"].int == modules.count)
            #expect(list["data"][0]["builtin"].bool == true)
            let phishing = JSON(try await app.send(.GET, "/api/v1/modules?category=phishing", token: tenant.token))
            #expect(phishing["data"].array.count == 1)
            expectError(try await app.send(.GET, "/api/v1/modules?category=cooking", token: tenant.token), .badRequest, "VALIDATION_ERROR")
        }
    }

    @Test func detailHasLessonsAndQuestions() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let module = try await TrainingFactory.builtinModule(app)
            let detail = JSON(try await app.send(.GET, "/api/v1/modules/\(module.id!)", token: tenant.token))["data"]
            #expect(detail["title"].string == module.title)
            #expect(detail["lessons"].array.count == module.lessons.count)
            #expect(detail["lessons"][0]["body_html"].string?.contains("<p>") == true)
            #expect(detail["questions"][0]["correct_answers"].array.count >= 1)
            expectError(try await app.send(.GET, "/api/v1/modules/\(module.id!)"), .unauthorized, "UNAUTHORIZED")
            let learner = try await Factory.user(app, in: tenant)
            expectError(try await app.send(.GET, "/api/v1/modules/\(module.id!)", token: try await Factory.token(app, for: learner)),
                        .forbidden, "FORBIDDEN")
        }
    }

    @Test func createRendersMarkdownSafely() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let created = try await app.send(.POST, "/api/v1/modules", token: tenant.token, json: Self.validModule)
            #expect(created.status == .created)
            let html = try #require(JSON(created)["data"]["lessons"][0]["body_html"].string)
            #expect(html.contains("<strong>signs in</strong>"))
            #expect(!html.contains("<script>"))
            #expect(!html.contains("javascript:"))
            #expect(JSON(created)["data"]["builtin"].bool == false)
        }
    }

    @Test func createValidatesLessonsAndQuestions() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let response = try await app.send(.POST, "/api/v1/modules", token: tenant.token, json: [
                "category": "nope", "pass_mark": 140, "lessons": [["title": "Only a title"]],
                "questions": [["prompt": "Q", "kind": "single", "options": ["one"], "correct_answers": [3]],
                              ["prompt": "Q2", "kind": "single", "options": ["a", "b", "c"], "correct_answers": [0, 1]]],
            ])
            expectError(response, .badRequest, "VALIDATION_ERROR")
            #expect(JSON(response)["error"]["details"].keys == [
                "title", "category", "pass_mark", "lessons.0.body", "questions.0.options", "questions.0.correct_answers",
                "questions.1.correct_answers",
            ])
            let noLessons = try await app.send(.POST, "/api/v1/modules", token: tenant.token, json: ["title": "T", "category": "other"])
            #expect(JSON(noLessons)["error"]["details"]["lessons"].exists)
        }
    }

    @Test func builtInsAreReadOnlyAndCustomisedByCopy() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let builtin = try await TrainingFactory.builtinModule(app)
            expectError(try await app.send(.PUT, "/api/v1/modules/\(builtin.id!)", token: tenant.token, json: ["title": "Mine"]),
                        .forbidden, "FORBIDDEN")
            expectError(try await app.send(.DELETE, "/api/v1/modules/\(builtin.id!)", token: tenant.token), .forbidden, "FORBIDDEN")
            let copy = try await app.send(.POST, "/api/v1/modules", token: tenant.token, json: [
                "source_module_id": builtin.id!.uuidString, "title": "Phishing at Acme",
            ])
            #expect(copy.status == .created)
            let data = JSON(copy)["data"]
            #expect(data["title"].string == "Phishing at Acme")
            #expect(data["source_module_id"].string == builtin.id!.wire)
            #expect(data["lessons"].array.count == builtin.lessons.count)
            let id = try #require(data["id"].string)
            let updated = try await app.send(.PUT, "/api/v1/modules/\(id)", token: tenant.token, json: ["pass_mark": 90])
            #expect(JSON(updated)["data"]["pass_mark"].int == 90)
            #expect(try await TrainingModule.find(builtin.id, on: app.db)?.title == builtin.title)
        }
    }

    @Test func anotherTenantsModuleIsInvisible() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let created = JSON(try await app.send(.POST, "/api/v1/modules", token: tenant.token, json: Self.validModule))
            let id = try #require(created["data"]["id"].string)
            try await expectOtherTenantGets404(app, .GET, "/api/v1/modules/\(id)")
            try await expectOtherTenantGets404(app, .PUT, "/api/v1/modules/\(id)", json: ["title": "Stolen"])
            try await expectOtherTenantGets404(app, .DELETE, "/api/v1/modules/\(id)")
            try await expectOtherTenantGets404(app, .POST, "/api/v1/modules", json: ["source_module_id": id])
            let deleted = try await app.send(.DELETE, "/api/v1/modules/\(id)", token: tenant.token)
            #expect(deleted.status == .ok)
            expectError(try await app.send(.GET, "/api/v1/modules/\(id)", token: tenant.token), .notFound, "NOT_FOUND")
        }
    }
}
