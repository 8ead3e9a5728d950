@testable import BulwarkApp
import Fluent
import NIOConcurrencyHelpers
import SQLKit
import Testing
import Vapor

/// Issue 8, items 7 and 8 (and issue 9's batched enrolment): activation with its enrolment job; escalations and reminders recorded before they are sent,
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

    /// The enrolment job, queued with the move, for `campaign`.
    private func enrolmentJobs(_ app: Application, _ campaign: TrainingCampaign) async throws -> [Job] {
        try await Job.query(on: app.db).filter(\.$kind == TrainingEnrolmentJob.kind).all()
            .filter { $0.payload.lowercased().contains(campaign.id!.wire) }
    }

    /// A client of `people` besides its admin and a draft campaign of two modules for everyone.
    private func draftOfTwoModules(_ app: Application, people: Int) async throws -> (TestTenant, TrainingCampaign) {
        let tenant = try await Factory.tenant(app)
        for _ in 0..<people { try await Factory.user(app, in: tenant) }
        let modules = [try await TrainingFactory.builtinModule(app), try await TrainingFactory.builtinModule(app, key: "ransomware")]
        return (tenant, try await TrainingFactory.campaign(app, tenant: tenant, modules: modules, status: "draft"))
    }

    @Test func activationQueuesTheEnrolmentWithTheStatusAndTheJobEnrolsEveryoneElse() async throws {
        try await withBulwark { app in
            let (tenant, campaign) = try await draftOfTwoModules(app, people: 6)
            let audience = try await CampaignService(db: app.db, actor: .system, now: app.clock.now()).audienceQuery(of: campaign).count()
            #expect(audience == 7)
            var service = CampaignService(db: app.db, actor: .system, now: app.clock.now())
            service.peopleEnrolledInline = 3
            try await service.move(campaign, to: "active", in: tenant.client)
            #expect(try await TrainingCampaign.find(campaign.id, on: app.db)?.status == "active")
            // The first people are enrolled in every module at once; the rest wait for the job queued with the move.
            let enrolled = try await Enrollment.query(on: app.db).filter(\.$campaign.$id == campaign.id!).all()
            #expect(enrolled.count == 3 * 2)
            #expect(Dictionary(grouping: enrolled, by: \.$user.id).values.allSatisfy { $0.count == 2 })
            let jobs = try await enrolmentJobs(app, campaign)
            #expect(jobs.count == 1 && jobs.first?.status == "queued")
            // Run twice at once (a second worker, or a retry overlapping): everyone once in each module.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in ["a", "b"] {
                    group.addTask {
                        try await TrainingEnrolmentJob().run(payload: jobs[0].payload, context: .test(app, worker: worker))
                    }
                }
                try await group.waitForAll()
            }
            let all = try await Enrollment.query(on: app.db).filter(\.$campaign.$id == campaign.id!).all()
            #expect(all.count == audience * 2)
            #expect(Set(all.map { "\($0.$user.id)/\($0.$module.id)" }).count == audience * 2)
        }
    }

    @Test func anEnrolmentJobStopsBetweenBatchesAtShutdownAndLeavesNoPersonHalfEnrolled() async throws {
        try await withBulwark { app in
            let (tenant, campaign) = try await draftOfTwoModules(app, people: 5)
            var service = CampaignService(db: app.db, actor: .system, now: app.clock.now())
            service.peopleEnrolledInline = 0
            try await service.move(campaign, to: "active", in: tenant.client)
            #expect(try await Enrollment.query(on: app.db).filter(\.$campaign.$id == campaign.id!).count() == 0)
            let batches = NIOLockedValueBox(0)
            await #expect(throws: JobInterrupted.self) {
                try await service.enrollAudience(of: campaign, batchSize: 2, shouldStop: {
                    batches.withLockedValue { $0 += 1; return $0 > 2 }
                })
            }
            let enrolled = try await Enrollment.query(on: app.db).filter(\.$campaign.$id == campaign.id!).all()
            #expect(enrolled.count == 2 * 2 * 2, "two whole batches of two people, two modules each")
            // A paused campaign's job enrols nobody more; once active again, the job finishes the audience.
            let job = try #require(try await enrolmentJobs(app, campaign).first)
            try await TrainingCampaign.query(on: app.db).filter(\.$id == campaign.id!).set(\.$status, to: "completed").update()
            try await TrainingEnrolmentJob().run(payload: job.payload, context: .test(app))
            #expect(try await Enrollment.query(on: app.db).filter(\.$campaign.$id == campaign.id!).count() == 8)
            try await TrainingCampaign.query(on: app.db).filter(\.$id == campaign.id!).set(\.$status, to: "active").update()
            try await TrainingEnrolmentJob().run(payload: job.payload, context: .test(app))
            #expect(try await Enrollment.query(on: app.db).filter(\.$campaign.$id == campaign.id!).count() == 6 * 2)
        }
    }

    @Test func changingModulesWhileEnrollingQueuesAnotherWalk() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            for _ in 0..<4 { try await Factory.user(app, in: tenant) }
            let first = try await TrainingFactory.builtinModule(app)
            let second = try await TrainingFactory.builtinModule(app, key: "ransomware")
            let campaign = try await TrainingFactory.campaign(app, tenant: tenant, modules: [first], status: "draft")
            var service = CampaignService(db: app.db, actor: .system, now: app.clock.now())
            service.peopleEnrolledInline = 0
            try await service.move(campaign, to: "active", in: tenant.client)
            let now = app.clock.now()
            let modules = ModuleService(scope: Scope(principal: Principal(user: tenant.admin, credential: .session(UUID())), db: app.db,
                                                     requestedClientID: nil), actor: .system, now: now)
            var rename = CampaignInput()
            rename.name = "Renamed"
            _ = try await service.update(campaign, with: rename, in: tenant.client, modules: modules)
            #expect(try await enrolmentJobs(app, campaign).count == 1, "the same modules and audience: the walk under way covers it")
            var more = CampaignInput()
            more.moduleIds = [first.id!.uuidString, second.id!.uuidString]
            _ = try await service.update(campaign, with: more, in: tenant.client, modules: modules)
            let jobs = try await enrolmentJobs(app, campaign)
            #expect(jobs.count == 2, "the change queues a walk of its own beside the one under way")
            // The first walk reads the campaign again per batch: it already enrols in both modules.
            try await TrainingEnrolmentJob().run(payload: jobs[0].payload, context: .test(app))
            let audience = try await service.audienceQuery(of: campaign).count()
            #expect(try await Enrollment.query(on: app.db).filter(\.$campaign.$id == campaign.id!).count() == audience * 2)
            try await TrainingFactory.runEnrolmentJobs(app)
            #expect(try await Enrollment.query(on: app.db).filter(\.$campaign.$id == campaign.id!).count() == audience * 2)
        }
    }

    @Test func theMinuteSyncLeavesACampaignToItsEnrolmentJob() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            for _ in 0..<3 { try await Factory.user(app, in: tenant) }
            let campaign = try await TrainingFactory.campaign(app, tenant: tenant, modules: [try await TrainingFactory.builtinModule(app)],
                                                              status: "draft")
            var service = CampaignService(db: app.db, actor: .system, now: app.clock.now())
            service.peopleEnrolledInline = 1
            try await service.move(campaign, to: "active", in: tenant.client)
            #expect(try await service.campaignsBeingEnrolled() == [campaign.id!])
            try await service.synchronise()
            #expect(try await Enrollment.query(on: app.db).filter(\.$campaign.$id == campaign.id!).count() == 1)
            try await TrainingFactory.runEnrolmentJobs(app)
            #expect(try await service.campaignsBeingEnrolled().isEmpty)
            try await Factory.user(app, in: tenant)
            try await service.synchronise()
            #expect(try await Enrollment.query(on: app.db).filter(\.$campaign.$id == campaign.id!).count() == 5)
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
                        try writer.append(TrackingHit(token: simulation.token, kind: "open", occurredAt: Date(), ip: "192.0.2.\(index % 250)",
                                                      userAgent: "Mail", isHead: false, details: nil))
                    }
                }
                try await group.waitForAll()
            }
            await writer.close()
            #expect(try await PhishingEvent.query(on: app.db).filter(\.$kind == "open").count() == 200)
            #expect(throws: TrackingEventWriter.Journal.Closed.self) {
                try writer.append(TrackingHit(token: simulation.token, kind: "open", occurredAt: Date(), ip: nil, userAgent: nil,
                                              isHead: false, details: nil))
            }
        }
    }
}
