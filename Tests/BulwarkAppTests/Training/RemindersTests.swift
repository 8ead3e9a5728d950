@testable import BulwarkApp
import Fluent
import Testing
import Vapor

@Suite struct RemindersTests {
    @Test func remindsBeforeTheDueDateOncePerStep() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let tenant = try await Factory.tenant(app)
            let learner = try await Factory.user(app, in: tenant, email: "soon@acme.test")
            let campaign = try await TrainingFactory.campaign(app, tenant: tenant, modules: [try await TrainingFactory.builtinModule(app)],
                                                              dueIn: 10 * 86_400)
            campaign.reminderDays = [3, 1]
            try await campaign.save(on: app.db)
            try await Enrollment.query(on: app.db).filter(\.$user.$id != learner.id!).set(\.$status, to: "completed").update()
            let mailer = RecordingMailer()
            func scan() async throws -> Int {
                try await ReminderService(db: app.db, mailer: mailer, from: MailAddress(email: "noreply@bulwark.test"),
                                          baseURL: "http://bulwark.test", clock: clock).scan()
            }
            #expect(try await scan() == 0)
            clock.advance(by: 7.5 * 86_400)   // 2.5 days left: the 3-day reminder
            #expect(try await scan() == 1)
            #expect(try await scan() == 0)
            #expect(mailer.sent.first?.subject.contains("due in 3 day") == true)
            clock.advance(by: 1.75 * 86_400)  // 0.75 days left: the 1-day reminder
            #expect(try await scan() == 1)
            #expect(mailer.sent.map(\.to.first?.email) == ["soon@acme.test", "soon@acme.test"])
            clock.advance(by: 86_400)         // past due: escalations take over, no more reminders
            #expect(try await scan() == 0)
        }
    }

    @Test func aLateEnrolmentGetsOnlyTheNearestReminder() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let tenant = try await Factory.tenant(app)
            let campaign = try await TrainingFactory.campaign(app, tenant: tenant, modules: [try await TrainingFactory.builtinModule(app)],
                                                              dueIn: 0.5 * 86_400)
            campaign.reminderDays = [7, 3, 1]
            try await campaign.save(on: app.db)
            let mailer = RecordingMailer()
            let sent = try await ReminderService(db: app.db, mailer: mailer, from: MailAddress(email: "noreply@bulwark.test"),
                                                 baseURL: "http://bulwark.test", clock: clock).scan()
            #expect(sent == 1)
            #expect(try await TrainingReminder.query(on: app.db).first()?.daysBefore == 1)
        }
    }
}
