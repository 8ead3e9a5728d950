@testable import BulwarkApp
import Fluent
import NIOConcurrencyHelpers
import SQLKit
import Testing
import Vapor

/// Issue 8, items 7 and 8: activation in one transaction; escalations and reminders recorded before they are sent,
/// never twice from two scans, never starved by people who cannot be mailed.
@Suite struct ScanReliabilityTests {
    private func escalation(_ app: Application, _ mailer: RecordingMailer, _ clock: ManualClock) -> EscalationService {
        EscalationService(db: app.db, mailer: mailer, from: MailAddress(email: "noreply@bulwark.test"), baseURL: "http://bulwark.test",
                          clock: clock)
    }

    /// A client with escalations on, `learners` people one day overdue, each reporting to one manager.
    private func overdue(_ app: Application, clock: ManualClock, learners: Int) async throws -> (TestTenant, [User]) {
        let tenant = try await Factory.tenant(app)
        let manager = try await Factory.user(app, in: tenant, role: .manager, email: "boss@acme.test")
        var people: [User] = []
        for index in 0..<learners {
            let person = try await Factory.user(app, in: tenant, email: "late\(index)@acme.test")
            person.$manager.id = manager.id
            try await person.save(on: app.db)
            people.append(person)
        }
        _ = try await TrainingFactory.campaign(app, tenant: tenant, modules: [try await TrainingFactory.builtinModule(app)], dueIn: 86_400)
        try await Enrollment.query(on: app.db).filter(\.$user.$id !~ people.compactMap(\.id)).set(\.$status, to: "completed").update()
        let settings = EscalationSettings.defaults(for: tenant.client.id!)
        settings.enabled = true
        settings.quietStartHour = 0
        settings.quietEndHour = 0
        try await settings.save(on: app.db)
        clock.advance(by: 2 * 86_400 + 60)
        return (tenant, people)
    }

    @Test func twoScansAtOnceSendEachStepOnce() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            _ = try await overdue(app, clock: clock, learners: 12)
            let mailer = RecordingMailer()
            let results = try await withThrowingTaskGroup(of: EscalationService.ScanResult.self) { group in
                for _ in 0..<2 { group.addTask { try await escalation(app, mailer, clock).scan() } }
                return try await group.reduce(into: [EscalationService.ScanResult]()) { $0.append($1) }
            }
            #expect(results.reduce(0) { $0 + $1.sent } == 12)
            #expect(mailer.sent.count == 12)
            #expect(Set(mailer.sent.map { $0.to[0].email }).count == 12)
            #expect(try await Escalation.query(on: app.db).filter(\.$status == "sent").count() == 12)
        }
    }

    @Test func peopleWhoCannotBeMailedNeverCrowdOutThoseWhoCan() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let (_, people) = try await overdue(app, clock: clock, learners: 520)
            // 519 of them left (inactive); one is still here, and sorts last.
            try await User.query(on: app.db).filter(\.$id ~~ people.dropLast().compactMap(\.id)).set(\.$status, to: "inactive").update()
            let mailer = RecordingMailer()
            #expect(try await escalation(app, mailer, clock).scan().sent == 1)
            #expect(mailer.sent.map { $0.to[0].email } == [people.last!.email])
        }
    }

    @Test func aStepRecordedByAProcessThatDiedIsSentOnceAfterItsLease() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let (tenant, people) = try await overdue(app, clock: clock, learners: 1)
            let enrollment = try #require(try await Enrollment.query(on: app.db).filter(\.$user.$id == people[0].id!).first())
            // Recorded as pending by a scan whose process then died before sending.
            try await app.db.sql.raw("""
                INSERT INTO escalations (id, client_id, enrollment_id, user_id, step, recipient_email, status, days_overdue, sent_at,
                                         claimed_by, claimed_at)
                VALUES (\(bind: UUID()), \(bind: tenant.client.id!), \(bind: enrollment.id!), \(bind: people[0].id!), 'learner', '',
                        'pending', 1, \(bind: clock.now()), 'dead-scan', \(bind: clock.now()))
                """).run()
            let mailer = RecordingMailer()
            #expect(try await escalation(app, mailer, clock).scan().sent == 0, "its lease has not run out yet")
            clock.advance(by: 601)
            #expect(try await escalation(app, mailer, clock).scan().sent >= 1)
            #expect(mailer.sent.filter { $0.headers["X-Bulwark-Escalation"] == "learner" }.count == 1)
            #expect(try await Escalation.query(on: app.db).filter(\.$step == "learner").first()?.status == "sent")
        }
    }

    @Test func twoReminderScansAtOnceSendEachReminderOnce() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let tenant = try await Factory.tenant(app)
            for index in 0..<10 { try await Factory.user(app, in: tenant, email: "r\(index)@acme.test") }
            let campaign = try await TrainingFactory.campaign(app, tenant: tenant, modules: [try await TrainingFactory.builtinModule(app)],
                                                              dueIn: 0.5 * 86_400)
            campaign.reminderDays = [1]
            try await campaign.save(on: app.db)
            let mailer = RecordingMailer()
            let sent = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<2 {
                    group.addTask {
                        try await ReminderService(db: app.db, mailer: mailer, from: MailAddress(email: "noreply@bulwark.test"),
                                                  baseURL: "http://bulwark.test", clock: clock).scan()
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(sent == 11)
            #expect(mailer.sent.count == 11)
            #expect(Set(mailer.sent.map { $0.to[0].email }).count == 11)
        }
    }

    @Test func activationAndEnrolmentLandTogetherOrNotAtAll() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            try await Factory.user(app, in: tenant)
            let module = try await TrainingFactory.builtinModule(app)
            let campaign = try await TrainingFactory.campaign(app, tenant: tenant, modules: [module], status: "draft")
            // The campaign names a module that no longer exists: the enrolments cannot be written.
            campaign.moduleIDs = [module.id!, UUID()]
            try await campaign.save(on: app.db)
            let changes = try await AuditEntry.query(on: app.db).filter(\.$action == "campaign.status_changed").count()
            let activated = try await app.send(.PUT, "/api/v1/campaigns/\(campaign.id!)", token: tenant.token, json: ["status": "active"])
            #expect(activated.status == .internalServerError)
            let stored = try #require(try await TrainingCampaign.find(campaign.id, on: app.db))
            #expect(stored.status == "draft", "not active without its audience")
            #expect(try await Enrollment.query(on: app.db).filter(\.$campaign.$id == campaign.id!).count() == 0)
            #expect(try await AuditEntry.query(on: app.db).filter(\.$action == "campaign.status_changed").count() == changes)
        }
    }

    @Test func shutdownWritesEveryBufferedTrackingEventAndThenRefusesNewOnes() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let profileResponse = try await app.send(.POST, "/api/v1/phishing/sending-profiles", token: tenant.token, json: [
                "name": "Relay", "host": "127.0.0.1", "port": 2525, "security": "none", "envelope_from": "b@acme.test"])
            let profile = try #require(JSON(profileResponse)["data"]["id"].string)
            let campaign = try await PhishingFactory.launched(app, tenant: tenant, profileID: profile,
                                                              templates: [try await PhishingFactory.builtinTemplate(app)])
            let simulation = try #require(try await PhishingFactory.simulations(app, campaign: campaign).first)
            let writer = app.trackingWriter
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        try await writer.submit(TrackingEvent(simulationID: simulation.id!, campaignID: simulation.$campaign.id,
                                                              clientID: simulation.clientID, kind: "open", occurredAt: Date(),
                                                              ip: "192.0.2.\(index % 250)", userAgent: "Mail", botReason: nil, details: nil))
                    }
                }
                try await group.waitForAll()
            }
            await writer.close()
            #expect(try await PhishingEvent.query(on: app.db).filter(\.$kind == "open").count() == 200)
            await #expect(throws: GroupCommit<TrackingEvent>.Closed.self) {
                try await writer.submit(TrackingEvent(simulationID: simulation.id!, campaignID: simulation.$campaign.id,
                                                      clientID: simulation.clientID, kind: "open", occurredAt: Date(),
                                                      ip: nil, userAgent: nil, botReason: nil, details: nil))
            }
        }
    }
}
