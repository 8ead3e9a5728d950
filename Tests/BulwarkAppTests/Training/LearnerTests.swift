@testable import BulwarkApp
import Fluent
import Testing
import Vapor
import VaporTesting

@Suite struct LearnerTests {
    @Test func aLearnerCompletesAModuleAndEarnsAVerifiableCertificate() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let learner = try await Factory.user(app, in: tenant, firstName: "Lena", lastName: "Learner")
            let token = try await Factory.token(app, for: learner)
            let module = try await TrainingFactory.builtinModule(app)
            _ = try await TrainingFactory.campaign(app, tenant: tenant, modules: [module])

            let list = JSON(try await app.send(.GET, "/api/v1/me/assignments", token: token))
            #expect(list["data"].array.count == 1)
            #expect(list["data"][0]["status"].string == "not_started")
            let id = try #require(list["data"][0]["id"].string)

            let opened = try await app.send(.GET, "/api/v1/me/assignments/\(id)", token: token)
            let body = opened.body.string
            #expect(!body.contains("correct_answers"), "answers are never sent before submission")
            #expect(JSON(opened)["data"]["assignment"]["status"].string == "in_progress")

            let early = try await app.send(.POST, "/api/v1/me/assignments/\(id)/quiz", token: token,
                                           json: ["answers": TrainingFactory.answers(for: module)])
            expectError(early, .badRequest, "CONFLICT")

            for lesson in module.lessons {
                let done = try await app.send(.POST, "/api/v1/me/assignments/\(id)/lessons/\(lesson.id)/complete", token: token)
                #expect(done.status == .ok)
            }
            #expect(JSON(try await app.send(.GET, "/api/v1/me/assignments/\(id)", token: token))["data"]["assignment"]["progress"].int == 80)

            let failed = JSON(try await app.send(.POST, "/api/v1/me/assignments/\(id)/quiz", token: token,
                                                 json: ["answers": TrainingFactory.answers(for: module, correct: false)]))
            #expect(failed["data"]["passed"].bool == false)
            #expect(failed["data"]["score"].int == 0)
            #expect(failed["data"]["attempts_remaining"].int == 2)
            #expect(failed["data"]["results"][0]["explanation"].string?.isEmpty == false)

            let passed = JSON(try await app.send(.POST, "/api/v1/me/assignments/\(id)/quiz", token: token,
                                                 json: ["answers": TrainingFactory.answers(for: module)]))
            #expect(passed["data"]["passed"].bool == true)
            #expect(passed["data"]["score"].int == 100)
            let code = try #require(passed["data"]["certificate_code"].string)

            let certificate = try await app.send(.GET, "/api/v1/me/assignments/\(id)/certificate", token: token)
            #expect(certificate.headers.contentType == .html)
            #expect(certificate.body.string.contains("Lena Learner"))
            #expect(certificate.body.string.contains(code))
            let verified = JSON(try await app.send(.GET, "/api/v1/certificates/\(code)"))
            #expect(verified["data"]["valid"].bool == true)
            #expect(verified["data"]["module"].string == module.title)
            expectError(try await app.send(.GET, "/api/v1/certificates/NOPE-NOPE-NOPE-NOPE"), .notFound, "NOT_FOUND")

            let again = try await app.send(.POST, "/api/v1/me/assignments/\(id)/quiz", token: token,
                                           json: ["answers": TrainingFactory.answers(for: module)])
            expectError(again, .badRequest, "CONFLICT")
            #expect(try await AuditEntry.query(on: app.db).filter(\.$action == "training.completed").count() == 1)
        }
    }

    @Test func attemptsAreLimited() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let learner = try await Factory.user(app, in: tenant)
            let token = try await Factory.token(app, for: learner)
            let module = try await TrainingFactory.builtinModule(app)
            _ = try await TrainingFactory.campaign(app, tenant: tenant, modules: [module])
            let enrollment = try #require(try await TrainingFactory.enrollments(app, of: learner).first)
            enrollment.completedLessons = module.lessons.map(\.id)
            try await enrollment.save(on: app.db)
            for _ in 0..<module.maxAttempts {
                _ = try await app.send(.POST, "/api/v1/me/assignments/\(enrollment.id!)/quiz", token: token,
                                       json: ["answers": TrainingFactory.answers(for: module, correct: false)])
            }
            let exhausted = try await app.send(.POST, "/api/v1/me/assignments/\(enrollment.id!)/quiz", token: token,
                                               json: ["answers": TrainingFactory.answers(for: module)])
            expectError(exhausted, .badRequest, "CONFLICT")
        }
    }

    @Test func quizValidation() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let learner = try await Factory.user(app, in: tenant)
            let token = try await Factory.token(app, for: learner)
            let module = try await TrainingFactory.builtinModule(app)
            _ = try await TrainingFactory.campaign(app, tenant: tenant, modules: [module])
            let enrollment = try #require(try await TrainingFactory.enrollments(app, of: learner).first)
            enrollment.completedLessons = module.lessons.map(\.id)
            try await enrollment.save(on: app.db)
            let response = try await app.send(.POST, "/api/v1/me/assignments/\(enrollment.id!)/quiz", token: token, json: [
                "answers": [["question_id": "made-up", "selected": [0]], ["question_id": module.questions[0].id, "selected": [9]]],
            ])
            expectError(response, .badRequest, "VALIDATION_ERROR")
            #expect(JSON(response)["error"]["details"].keys == ["answers.0.question_id", "answers.1.selected", "answers"])
            expectError(try await app.send(.POST, "/api/v1/me/assignments/\(enrollment.id!)/quiz", token: token, json: [:]),
                        .badRequest, "VALIDATION_ERROR")
            expectError(try await app.send(.POST, "/api/v1/me/assignments/\(enrollment.id!)/lessons/nope/complete", token: token),
                        .notFound, "NOT_FOUND")
        }
    }

    @Test func nobodyElseCanOpenMyAssignment() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let learner = try await Factory.user(app, in: tenant)
            let colleague = try await Factory.user(app, in: tenant)
            _ = try await TrainingFactory.campaign(app, tenant: tenant, modules: [try await TrainingFactory.builtinModule(app)])
            let mine = try #require(try await TrainingFactory.enrollments(app, of: learner).first)
            expectError(try await app.send(.GET, "/api/v1/me/assignments/\(mine.id!)", token: try await Factory.token(app, for: colleague)),
                        .notFound, "NOT_FOUND")
            try await expectOtherTenantGets404(app, .GET, "/api/v1/me/assignments/\(mine.id!)")
            expectError(try await app.send(.GET, "/api/v1/me/assignments"), .unauthorized, "UNAUTHORIZED")
        }
    }
}
