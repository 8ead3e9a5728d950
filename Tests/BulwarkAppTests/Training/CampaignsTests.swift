@testable import BulwarkApp
import Fluent
import Testing
import Vapor
import VaporTesting

@Suite struct CampaignsTests {
    @Test func activatingEnrolsTheAudienceAndShowsLiveFigures() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            for index in 0..<4 { try await Factory.user(app, in: tenant, department: index < 3 ? "Sales" : "IT") }
            let modules = [try await TrainingFactory.builtinModule(app), try await TrainingFactory.builtinModule(app, key: "passwords-and-mfa")]
            let due = ISO8601.string(Date().addingTimeInterval(14 * 86_400))
            let created = try await app.send(.POST, "/api/v1/campaigns", token: tenant.token, json: [
                "name": "Q1 Sales awareness", "module_ids": modules.map { $0.id!.uuidString },
                "audience": ["type": "departments", "departments": ["Sales"]], "due_at": due, "status": "active",
                "reminder_days": [3, 1],
            ])
            #expect(created.status == .created)
            let data = JSON(created)["data"]
            #expect(data["status"].string == "active")
            #expect(data["stats"]["enrolled"].int == 3)
            #expect(data["stats"]["assignments"].int == 6)
            #expect(data["stats"]["completion_rate"].double == 0)
            #expect(data["reminder_days"].array.compactMap(\.int) == [3, 1])
            let id = try #require(data["id"].string)
            // Updating an active campaign enrols newcomers of the audience, never twice.
            try await Factory.user(app, in: tenant, department: "Sales")
            let updated = JSON(try await app.send(.PUT, "/api/v1/campaigns/\(id)", token: tenant.token, json: ["description": "Now with more"]))
            #expect(updated["data"]["stats"]["enrolled"].int == 4)
            #expect(try await Enrollment.query(on: app.db).count() == 8)
            let list = JSON(try await app.send(.GET, "/api/v1/campaigns?status=active", token: tenant.token))
            #expect(list["data"].array.count == 1)
        }
    }

    @Test func validationListsEveryProblem() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let response = try await app.send(.POST, "/api/v1/campaigns", token: tenant.token, json: [
                "module_ids": [UUID().uuidString], "audience": ["type": "users", "user_ids": ["nope"]],
                "start_at": "2030-01-10T00:00:00Z", "due_at": "2030-01-01T00:00:00Z", "reminder_days": [0], "status": "completed",
            ])
            expectError(response, .badRequest, "VALIDATION_ERROR")
            #expect(JSON(response)["error"]["details"].keys == ["name", "module_ids", "audience.user_ids", "due_at", "reminder_days", "status"])
            expectError(try await app.send(.POST, "/api/v1/campaigns", json: [:]), .unauthorized, "UNAUTHORIZED")
        }
    }

    /// A client with one person besides its admin, and a campaign for everyone that starts in an hour.
    private func scheduledInAnHour(_ app: Application) async throws -> (TestTenant, TrainingCampaign) {
        let tenant = try await Factory.tenant(app)
        try await Factory.user(app, in: tenant)
        let campaign = try await TrainingFactory.campaign(app, tenant: tenant, modules: [try await TrainingFactory.builtinModule(app)],
                                                          startIn: 3600, dueIn: 86_400 * 7)
        return (tenant, campaign)
    }

    @Test func aFutureStartSchedulesAndTheSyncJobActivates() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let (tenant, campaign) = try await scheduledInAnHour(app)
            #expect(campaign.status == "scheduled")
            #expect(try await Enrollment.query(on: app.db).count() == 0)
            clock.advance(by: 3601)
            try await CampaignService(db: app.db, actor: .system, now: clock.now()).synchronise()
            #expect(try await TrainingCampaign.find(campaign.id, on: app.db)?.status == "active")
            #expect(try await Enrollment.query(on: app.db).count() == 2)
            // Once the enrolment job has walked the audience, auto-enrolment picks up people who join later.
            try await TrainingFactory.runEnrolmentJobs(app)
            try await Factory.user(app, in: tenant)
            try await CampaignService(db: app.db, actor: .system, now: clock.now()).synchronise()
            #expect(try await Enrollment.query(on: app.db).count() == 3)
        }
    }

    /// A check for newcomers that counts many rows (a million people and their enrolments) waits its background
    /// budget; a small one runs at the sync's cadence.
    @Test func aLargeCheckForNewcomersWaitsItsBudget() {
        let (large, small, now) = (UUID(), UUID(), Date())
        #expect(NewcomerWatch.isDue(large, now: now, cadence: 60), "never checked")
        NewcomerWatch.noteChecked(large, at: now, rows: 2_000_000)
        let interval = 2_000_000 * NewcomerWatch.secondsPerCountedRow * BackgroundBudget.costFactor
        #expect(interval > 60)
        #expect(!NewcomerWatch.isDue(large, now: now.addingTimeInterval(61), cadence: 60))
        #expect(NewcomerWatch.isDue(large, now: now.addingTimeInterval(interval), cadence: 60))
        NewcomerWatch.noteChecked(small, at: now, rows: 1_000)
        #expect(NewcomerWatch.isDue(small, now: now, cadence: 60))
    }

    /// The sync leaves a large campaign alone until its budget allows, then enrols the newcomer.
    @Test func theSyncWaitsALargeCampaignsBudgetThenEnrols() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let campaign = try await TrainingFactory.campaign(app, tenant: tenant, modules: [try await TrainingFactory.builtinModule(app)],
                                                              departments: ["Finance"])
            try await TrainingFactory.runEnrolmentJobs(app)
            try await Factory.user(app, in: tenant, department: "Finance")
            let now = Date()
            NewcomerWatch.noteChecked(campaign.id!, at: now, rows: 2_000_000)
            func enrolled() async throws -> Int { try await Enrollment.query(on: app.db).filter(\.$campaign.$id == campaign.id!).count() }
            try await CampaignService(db: app.db, actor: .system, now: now.addingTimeInterval(61)).synchronise()
            #expect(try await enrolled() == 0, "checked a minute ago by the sync's cadence, not by its budget")
            let interval = 2_000_000 * NewcomerWatch.secondsPerCountedRow * BackgroundBudget.costFactor
            try await CampaignService(db: app.db, actor: .system, now: now.addingTimeInterval(interval + 1)).synchronise()
            #expect(try await enrolled() == 1)
        }
    }

    /// The minutely sync walks an audience again only when something it depends on changed since its last walk.
    @Test func theSyncWalksAgainOnlyWhenPeopleOrTheCampaignChanged() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let person = try await Factory.user(app, in: tenant)
            let campaign = try await TrainingFactory.campaign(app, tenant: tenant, modules: [try await TrainingFactory.builtinModule(app)],
                                                              departments: ["Finance"])
            try await TrainingFactory.runEnrolmentJobs(app)
            let stored = { try #require(try await TrainingCampaign.find(campaign.id, on: app.db)) }
            // The enrolment job walked the whole audience: the next sync has no reason to walk it again.
            #expect(!NewcomerWatch.mayHaveNewcomers(campaign.id!, try await NewcomerWatch.fingerprint(of: try await stored(), on: app.db)))
            let sync = { try await CampaignService(db: app.db, actor: .system, now: Date()).synchronise() }
            try await sync()
            let quiet = try await NewcomerWatch.fingerprint(of: try await stored(), on: app.db)
            #expect(!NewcomerWatch.mayHaveNewcomers(campaign.id!, quiet), "a walk with nothing changed since is not repeated")
            #expect(try await Enrollment.query(on: app.db).filter(\.$campaign.$id == campaign.id!).count() == 0)
            // Someone moving into the audience (a save stamps updated_at) is enrolled by the next sync.
            person.department = "Finance"
            try await person.save(on: app.db)
            #expect(NewcomerWatch.mayHaveNewcomers(campaign.id!, try await NewcomerWatch.fingerprint(of: try await stored(), on: app.db)))
            try await sync()
            #expect(try await Enrollment.query(on: app.db).filter(\.$campaign.$id == campaign.id!).count() == 1)
            // A newcomer, and an enrolment removed behind the campaign's back, each bring a walk.
            try await Factory.user(app, in: tenant, department: "Finance")
            try await sync()
            #expect(try await Enrollment.query(on: app.db).filter(\.$campaign.$id == campaign.id!).count() == 2)
            try await Enrollment.query(on: app.db).filter(\.$campaign.$id == campaign.id!).filter(\.$user.$id == person.id!).delete(force: true)
            try await sync()
            #expect(try await Enrollment.query(on: app.db).filter(\.$campaign.$id == campaign.id!).count() == 2)
            // Another tenant's people changing does not change this campaign's fingerprint.
            let before = try await NewcomerWatch.fingerprint(of: try await stored(), on: app.db)
            let other = try await Factory.tenant(app, name: "Other")
            try await Factory.user(app, in: other, department: "Finance")
            #expect(try await NewcomerWatch.fingerprint(of: try await stored(), on: app.db) == before)
        }
    }

    @Test func twoSyncsAtOnceActivateACampaignOnce() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let (_, campaign) = try await scheduledInAnHour(app)
            func moves() async throws -> Int {
                try await AuditEntry.query(on: app.db).filter(\.$action == "campaign.status_changed").all()
                    .filter { $0.targetID?.lowercased() == campaign.id!.wire }.count
            }
            let before = try await moves()
            clock.advance(by: 3601)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<2 {
                    group.addTask { try await CampaignService(db: app.db, actor: .system, now: clock.now()).synchronise() }
                }
                try await group.waitForAll()
            }
            #expect(try await TrainingCampaign.find(campaign.id, on: app.db)?.status == "active")
            #expect(try await Enrollment.query(on: app.db).count() == 2)
            #expect(try await moves() == before + 1, "one activation, whoever got there first")
        }
    }

    @Test func statusMovesFollowTheLifecycle() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let campaign = try await TrainingFactory.campaign(app, tenant: tenant, modules: [try await TrainingFactory.builtinModule(app)])
            let back = try await app.send(.PUT, "/api/v1/campaigns/\(campaign.id!)", token: tenant.token, json: ["status": "draft"])
            expectError(back, .badRequest, "VALIDATION_ERROR")
            let done = JSON(try await app.send(.PUT, "/api/v1/campaigns/\(campaign.id!)", token: tenant.token, json: ["status": "completed"]))
            #expect(done["data"]["status"].string == "completed")
            #expect(done["data"]["completed_at"].string != nil)
        }
    }

    @Test func deletedCampaignsAnswer404AndLeaveTheirResultsInReports() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let module = try await TrainingFactory.builtinModule(app)
            let learner = try await Factory.user(app, in: tenant)
            let draft = try await TrainingFactory.campaign(app, tenant: tenant, modules: [module], status: "draft")
            let active = try await TrainingFactory.campaign(app, tenant: tenant, modules: [module])
            for campaign in [draft, active] {
                let deleted = try await app.send(.DELETE, "/api/v1/campaigns/\(campaign.id!)", token: tenant.token)
                #expect(deleted.status == .ok)
                #expect(JSON(deleted)["data"]["deleted"].bool == true)
                expectError(try await app.send(.GET, "/api/v1/campaigns/\(campaign.id!)", token: tenant.token), .notFound, "NOT_FOUND")
                expectError(try await app.send(.PUT, "/api/v1/campaigns/\(campaign.id!)", token: tenant.token, json: ["name": "x"]),
                            .notFound, "NOT_FOUND")
            }
            #expect(JSON(try await app.send(.GET, "/api/v1/campaigns", token: tenant.token))["data"].array.isEmpty)
            #expect(try await TrainingCampaign.find(draft.id, on: app.db) == nil)
            // The campaign that ran stops, and what its learners did stays in the reports.
            #expect(try await TrainingCampaign.find(active.id, on: app.db)?.status == "archived")
            #expect(try await TrainingFactory.enrollments(app, of: learner).count == 1)
            let export = try await app.send(.GET, "/api/v1/export/training-completion", token: tenant.token)
            #expect(export.body.string.contains(learner.email))
        }
    }

    @Test func anotherTenantsCampaignAnswers404() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let campaign = try await TrainingFactory.campaign(app, tenant: tenant, modules: [try await TrainingFactory.builtinModule(app)])
            try await expectOtherTenantGets404(app, .GET, "/api/v1/campaigns/\(campaign.id!)")
            try await expectOtherTenantGets404(app, .PUT, "/api/v1/campaigns/\(campaign.id!)", json: ["name": "x"])
            try await expectOtherTenantGets404(app, .DELETE, "/api/v1/campaigns/\(campaign.id!)")
            // Another tenant's private module cannot be put into a campaign either.
            let created = JSON(try await app.send(.POST, "/api/v1/modules", token: tenant.token, json: ModulesTests.validModule))
            let other = try await Factory.tenant(app, name: "Other")
            let response = try await app.send(.POST, "/api/v1/campaigns", token: other.token, json: [
                "name": "x", "module_ids": [created["data"]["id"].string!], "due_at": "2099-01-01T00:00:00Z",
            ])
            expectError(response, .badRequest, "VALIDATION_ERROR")
        }
    }
}
