@testable import BulwarkApp
import Fluent
import Testing
import Vapor
import VaporTesting

/// A launch writes the first people's simulations before it answers and queues a job for the rest; the campaign is
/// not `sent` before the job has written everyone, a walk run twice writes nobody twice, and a campaign cancelled
/// mid-walk gets no more mail queued.
@Suite struct PhishingLaunchTests {
    /// A tenant of `people` besides its admin, a profile sending two a minute, and a draft campaign for everyone.
    private func draft(_ app: Application, fixture: SMTPFixture, people: Int) async throws -> (TestTenant, PhishingCampaign) {
        let tenant = try await Factory.tenant(app)
        for index in 0..<people { try await Factory.user(app, in: tenant, email: "p\(index)@acme.test") }
        let profile = try await PhishingFactory.profile(app, tenant: tenant, fixture: fixture, throttle: 2)
        let templates = [try await PhishingFactory.builtinTemplate(app), try await PhishingFactory.builtinTemplate(app, key: "parcel-held")]
        let created = JSON(try await app.send(.POST, "/api/v1/phishing/campaigns", token: tenant.token, json: [
            "name": "Walk", "template_ids": templates.map { $0.id!.uuidString }, "sending_profile_id": profile,
            "tracking_url": "https://phish.acme.test", "template_assignment": "ab",
        ]))
        let campaign = try #require(try await PhishingCampaign.find(UUID(uuidString: created["data"]["id"].string!), on: app.db))
        return (tenant, campaign)
    }

    private func launch(_ app: Application, _ campaign: PhishingCampaign, in tenant: TestTenant, inline: Int) async throws {
        var service = PhishingCampaignService(db: app.db, actor: .system, now: app.clock.now(), defaultTrackingURL: "https://phish.acme.test")
        service.peopleLaunchedInline = inline
        try await service.launch(campaign, in: tenant.client)
    }

    private func launchJobs(_ app: Application) async throws -> [Job] {
        try await Job.query(on: app.db).filter(\.$kind == PhishingLaunchJob.kind).all()
    }

    private func launchPending(_ app: Application, _ campaign: PhishingCampaign) async throws -> Bool {
        try await app.db.sql.raw("SELECT launch_pending FROM phishing_campaigns WHERE id = \(bind: campaign.id!)").first()!
            .decode(column: "launch_pending", as: Bool.self)
    }

    @Test func theJobWritesEveryoneElseOnceAndTheCampaignIsSentOnlyAfter() async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let (tenant, campaign) = try await draft(app, fixture: fixture, people: 6)
            try await launch(app, campaign, in: tenant, inline: 2)
            let first = try await PhishingFactory.simulations(app, campaign: campaign.id!.uuidString)
            #expect(first.count == 2)
            #expect(try await launchPending(app, campaign))
            let jobs = try await launchJobs(app)
            #expect(jobs.count == 1 && jobs[0].status == "queued")
            // Progress counts the whole audience from the start: those not written yet are queued.
            let detail = JSON(try await app.send(.GET, "/api/v1/phishing/campaigns/\(campaign.id!.uuidString)", token: tenant.token))
            #expect(detail["data"]["progress"]["total"].int == 7)
            #expect(detail["data"]["progress"]["queued"].int == 7)

            // Everything written so far goes out; the campaign still waits for the rest of its audience.
            clock.advance(by: 3600)
            for _ in 0..<3 {
                try await PhishingSender(context: .test(app)).sendDue()
                clock.advance(by: 31)  // one message per 30 s
            }
            #expect(fixture.messages.count == 2)
            #expect(try await PhishingCampaign.find(campaign.id, on: app.db)?.status == "sending")
            let midway = JSON(try await app.send(.GET, "/api/v1/phishing/campaigns/\(campaign.id!.uuidString)", token: tenant.token))
            #expect(midway["data"]["progress"]["total"].int == 7 && midway["data"]["progress"]["sent"].int == 2)
            #expect(midway["data"]["progress"]["queued"].int == 5)

            // Two runs at once (a retry overlapping a slow first run): everyone once.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in ["a", "b"] {
                    group.addTask { try await PhishingLaunchJob().run(payload: jobs[0].payload, context: .test(app, worker: worker)) }
                }
                try await group.waitForAll()
            }
            let all = try await PhishingFactory.simulations(app, campaign: campaign.id!.uuidString)
            #expect(all.count == 7)
            #expect(Set(all.map(\.$campaign.id)).count == 1 && Set(all.map(\.userID)).count == 7)
            #expect(Set(all.map(\.templateID)).count == 2, "the A/B split holds across the walk")
            // One plan for the request and the job: seven distinct slots 30 s apart (two a minute).
            let times = all.map(\.sendAt).sorted()
            #expect(zip(times, times.dropFirst()).allSatisfy { $1.timeIntervalSince($0) == 30 })
            #expect(try await launchPending(app, campaign) == false)

            for _ in 0..<6 {
                clock.advance(by: 31)
                try await PhishingSender(context: .test(app)).sendDue()
            }
            #expect(try await PhishingCampaign.find(campaign.id, on: app.db)?.status == "sent")
            #expect(fixture.messages.count == 7)
        }
        await fixture.stop()
    }

    @Test func aCampaignCancelledMidWalkGetsNoMoreMail() async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        try await withBulwark { app in
            let (tenant, campaign) = try await draft(app, fixture: fixture, people: 4)
            try await launch(app, campaign, in: tenant, inline: 1)
            _ = try await app.send(.DELETE, "/api/v1/phishing/campaigns/\(campaign.id!.uuidString)", token: tenant.token)
            let jobs = try await launchJobs(app)
            try await PhishingLaunchJob().run(payload: jobs[0].payload, context: .test(app))
            let all = try await PhishingFactory.simulations(app, campaign: campaign.id!.uuidString)
            #expect(all.count == 1)
            #expect(all.allSatisfy { $0.sendStatus == "cancelled" })
            #expect(try await launchPending(app, campaign) == false)
        }
        await fixture.stop()
    }

    @Test func aWalkStoppedAtShutdownLeavesTheCampaignWaitingForTheRetry() async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        try await withBulwark { app in
            let (tenant, campaign) = try await draft(app, fixture: fixture, people: 3)
            try await launch(app, campaign, in: tenant, inline: 1)
            let jobs = try await launchJobs(app)
            await #expect(throws: JobInterrupted.self) {
                try await PhishingLaunchJob().run(payload: jobs[0].payload, context: .test(app, stop: { true }))
            }
            #expect(try await launchPending(app, campaign), "not sent until the retry has written everyone")
            try await PhishingLaunchJob().run(payload: jobs[0].payload, context: .test(app))
            #expect(try await PhishingFactory.simulations(app, campaign: campaign.id!.uuidString).count == 4)
        }
        await fixture.stop()
    }

    /// The job resumes from the saved cursor: someone who left meanwhile leaves a gap, nobody shares a slot.
    @Test func theJobResumesFromTheSavedCursorWithoutSharingASlot() async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        try await withBulwark { app in
            let (tenant, campaign) = try await draft(app, fixture: fixture, people: 8)
            try await launch(app, campaign, in: tenant, inline: 3)
            let written = try await PhishingFactory.simulations(app, campaign: campaign.id!.uuidString)
            // The first person by id (already written) leaves; a latecomer joins.
            let leaving = try #require(try await User.find(written.map(\.userID).min(by: UUID.byteOrder), on: app.db))
            leaving.status = "inactive"
            try await leaving.save(on: app.db)
            try await Factory.user(app, in: tenant, email: "late@acme.test")
            let jobs = try await launchJobs(app)
            try await PhishingLaunchJob().run(payload: jobs[0].payload, context: .test(app))
            try await PhishingLaunchJob().run(payload: jobs[0].payload, context: .test(app))
            let all = try await PhishingFactory.simulations(app, campaign: campaign.id!.uuidString)
            #expect(Set(all.map(\.userID)).count == all.count)
            #expect(Set(all.map(\.sendAt)).count == all.count, "one slot each")
            #expect(all.count >= 9 && all.count <= 10, "everyone of the launch, the latecomer if after the cursor")
        }
        await fixture.stop()
    }

    @Test func slotsArePermutationsOfTheSchedule() {
        for count in [1, 2, 3, 10, 97, 1_000] {
            let plan = PhishingLaunchPlan(campaignID: UUID(), start: Date(timeIntervalSince1970: 0), spacing: 2, count: count, domain: "x.test")
            let slots = (0..<count).map { Int(plan.sendAt(position: $0).timeIntervalSince1970 / 2) }
            #expect(Set(slots) == Set(0..<count), "count \(count)")
            #expect(plan.sendAt(position: count + 3).timeIntervalSince1970 == Double(count + 3) * 2, "newcomers after the last")
        }
    }
}
