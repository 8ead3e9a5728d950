@testable import BulwarkApp
import Fluent
import Testing
import Vapor
import VaporTesting

@Suite struct EscalationsTests {
    private func setUp(_ app: Application, clock: ManualClock) async throws -> (TestTenant, User, User) {
        let tenant = try await Factory.tenant(app)
        let manager = try await Factory.user(app, in: tenant, role: .manager, email: "manager@acme.test")
        let learner = try await Factory.user(app, in: tenant, email: "learner@acme.test")
        learner.$manager.id = manager.id
        try await learner.save(on: app.db)
        _ = try await TrainingFactory.campaign(app, tenant: tenant, modules: [try await TrainingFactory.builtinModule(app)], dueIn: 86_400)
        // Only the learner's assignment should be overdue in these tests.
        try await Enrollment.query(on: app.db).filter(\.$user.$id != learner.id!).set(\.$status, to: "completed").update()
        let settings = EscalationSettings.defaults(for: tenant.client.id!)
        settings.enabled = true
        settings.quietStartHour = 0
        settings.quietEndHour = 0
        try await settings.save(on: app.db)
        return (tenant, manager, learner)
    }

    private func scan(_ app: Application, _ mailer: RecordingMailer, _ clock: ManualClock) async throws -> EscalationService.ScanResult {
        try await EscalationService(db: app.db, mailer: mailer, from: MailAddress(email: "noreply@bulwark.test"),
                                    baseURL: "http://bulwark.test", clock: clock).scan()
    }

    @Test func escalatesLearnerThenManagerThenAdminOnceEach() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let (tenant, _, _) = try await setUp(app, clock: clock)
            let mailer = RecordingMailer()
            #expect(try await scan(app, mailer, clock) == .init())
            clock.advance(by: 86_400 * 2 + 60)      // 1 day overdue: the learner
            #expect(try await scan(app, mailer, clock).sent == 1)
            #expect(mailer.sent.last?.to.map(\.email) == ["learner@acme.test"])
            #expect(try await scan(app, mailer, clock).sent == 0, "never twice for one step")
            clock.advance(by: 86_400 * 6)           // 7 days: the manager
            #expect(try await scan(app, mailer, clock).sent == 1)
            #expect(mailer.sent.last?.to.map(\.email) == ["manager@acme.test"])
            clock.advance(by: 86_400 * 7)           // 14 days: the administrators
            #expect(try await scan(app, mailer, clock).sent == 1)
            #expect(mailer.sent.last?.to.map(\.email) == [tenant.admin.email])
            #expect(mailer.sent.last?.headers["X-Bulwark-Escalation"] == "admin")
            #expect(try await Escalation.query(on: app.db).count() == 3)

            let token = try await Factory.token(app, for: tenant.admin) // the clock moved past the tenant's first token
            let history = JSON(try await app.send(.GET, "/api/v1/escalation/history", token: token))
            #expect(history["data"].array.compactMap { $0["step"].string } == ["admin", "manager", "learner"])
            let id = try #require(history["data"][0]["id"].string)
            let acknowledged = JSON(try await app.send(.POST, "/api/v1/escalation/acknowledge/\(id)", token: token))
            #expect(acknowledged["data"]["acknowledged_by"].string == tenant.admin.id!.wire)
            try await expectOtherTenantGets404(app, .POST, "/api/v1/escalation/acknowledge/\(id)")
            let pending = JSON(try await app.send(.GET, "/api/v1/escalation/history?acknowledged=false", token: token))
            #expect(pending["data"].array.count == 2)
        }
    }

    @Test func quietHoursAndMailFailures() async throws {
        let clock = ManualClock(Date(timeIntervalSince1970: 1_800_000_000)) // 08:00 UTC
        try await withBulwark(clock: clock) { app in
            let (tenant, _, _) = try await setUp(app, clock: clock)
            let settings = try #require(try await EscalationSettings.find(tenant.client.id, on: app.db))
            settings.quietStartHour = 8
            settings.quietEndHour = 9
            try await settings.save(on: app.db)
            clock.advance(by: 86_400 * 2)
            let mailer = RecordingMailer()
            #expect(try await scan(app, mailer, clock).sent == 0, "quiet hours")
            clock.advance(by: 3600)
            mailer.outcomeFor = { _ in .temporaryFailure("451 busy") }
            #expect(try await scan(app, mailer, clock).deferred == 1)
            #expect(try await Escalation.query(on: app.db).count() == 0, "a temporary failure is retried next time")
            mailer.outcomeFor = { _ in .permanentFailure("550 no such user") }
            #expect(try await scan(app, mailer, clock).failed == 1)
            #expect(try await Escalation.query(on: app.db).first()?.status == "failed")
        }
    }

    @Test func settingsValidateAndSave() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let defaults = JSON(try await app.send(.GET, "/api/v1/escalation/settings", token: tenant.token))
            #expect(defaults["data"]["enabled"].bool == false)
            let saved = JSON(try await app.send(.PUT, "/api/v1/escalation/settings", token: tenant.token, json: [
                "enabled": true, "learner_after_days": 2, "manager_after_days": 5, "admin_after_days": 10, "timezone": "Europe/Paris",
            ]))
            #expect(saved["data"]["manager_after_days"].int == 5)
            #expect(saved["data"]["timezone"].string == "Europe/Paris")
            let invalid = try await app.send(.PUT, "/api/v1/escalation/settings", token: tenant.token, json: [
                "learner_after_days": 9, "manager_after_days": 3, "quiet_hours_start": 25, "timezone": "Mars/Olympus",
            ])
            expectError(invalid, .badRequest, "VALIDATION_ERROR")
            #expect(JSON(invalid)["error"]["details"].keys == ["manager_after_days", "quiet_hours_start", "timezone"])
            expectError(try await app.send(.GET, "/api/v1/escalation/settings"), .unauthorized, "UNAUTHORIZED")
            let other = try await Factory.tenant(app, name: "Other")
            #expect(JSON(try await app.send(.GET, "/api/v1/escalation/settings", token: other.token))["data"]["enabled"].bool == false)
        }
    }
}
