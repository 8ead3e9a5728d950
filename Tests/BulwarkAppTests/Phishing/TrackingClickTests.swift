@testable import BulwarkApp
import Fluent
import Testing
import Vapor
import VaporTesting

/// Clicks answered from the campaign a minted token names, and the training the journal's flusher assigns.
@Suite struct TrackingClickTests {
    private let browser: HTTPHeaders = ["User-Agent": TrackingTests.browser]

    typealias SentCampaign = (tenant: TestTenant, campaign: String, simulations: [Simulation], module: TrainingModule)

    /// Runs `body` with a sent campaign (with a training module) for two learners, ten minutes after sending.
    private func withSentCampaign(_ body: @escaping (Application, ManualClock, SentCampaign) async throws -> Void) async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let tenant = try await Factory.tenant(app)
            for index in 0..<2 { _ = try await Factory.user(app, in: tenant, email: "person\(index)@acme.test") }
            let module = try await TrainingFactory.builtinModule(app)
            let profile = try await PhishingFactory.profile(app, tenant: tenant, fixture: fixture)
            let campaign = try await PhishingFactory.launched(app, tenant: tenant, profileID: profile,
                                                              templates: [try await PhishingFactory.builtinTemplate(app)],
                                                              extra: ["training_module_id": module.id!.uuidString])
            clock.advance(by: 60)
            try await PhishingSender(context: .test(app)).sendDue()
            clock.advance(by: 600)
            let simulations = try await PhishingFactory.simulations(app, campaign: campaign).filter { $0.email.hasPrefix("person") }
            try await body(app, clock, (tenant, campaign, simulations, module))
        }
        await fixture.stop()
    }

    @Test func launchedTokensNameTheirCampaign() async throws {
        try await withSentCampaign { app, _, sent in
            let (_, campaign, simulations, _) = sent
            #expect(simulations.count == 2)
            for simulation in simulations {
                #expect(simulation.token.utf8.count == TrackingTarget.mintedLength)
                #expect(TrackingTarget.plausibleToken(simulation.token) == simulation.token)
                #expect(TrackingTarget.campaignID(in: simulation.token) == UUID(uuidString: campaign))
            }
            #expect(simulations[0].token.prefix(22) == simulations[1].token.prefix(22))
            #expect(simulations[0].token.dropFirst(22) != simulations[1].token.dropFirst(22))
            // A token of any other length (every token from before) names no campaign.
            #expect(TrackingTarget.campaignID(in: RandomToken.make(bytes: 24)) == nil)
            #expect(TrackingTarget.campaignID(in: String(simulations[0].token.dropLast())) == nil)
        }
    }

    /// A person's click is stored and enrols them, once however often they click; a scanner's is stored, flagged, and
    /// enrols nobody.
    @Test func aPersonsClickEnrolsThemOnceAndAScannersNobody() async throws {
        try await withSentCampaign { app, _, sent in
            let (tenant, _, simulations, module) = sent
            let (person, scanned) = (simulations[0], simulations[1])
            for _ in 0..<3 {
                let click = try await app.send(.GET, "/api/phishing/track/click/\(person.token)", headers: browser)
                #expect(click.status == .seeOther)
                #expect(click.headers.first(name: .location) == "https://phish.acme.test/phish/\(person.token)")
            }
            let scanner: HTTPHeaders = ["User-Agent": "Mozilla/5.0 (compatible; Barracuda Sentinel)"]
            #expect(try await app.send(.GET, "/api/phishing/track/click/\(scanned.token)", headers: scanner).status == .seeOther)

            let clicks = try await PhishingEvent.query(on: app.db).filter(\.$kind == "click").all()
            #expect(clicks.filter { $0.simulationID == person.id }.count == 3)
            #expect(clicks.filter { $0.simulationID == scanned.id }.map(\.isBot) == [true])
            #expect(try await Enrollment.query(on: app.db).filter(\.$user.$id == person.userID).all().map(\.$module.id) == [module.id!])
            #expect(try await Enrollment.query(on: app.db).filter(\.$user.$id == scanned.userID).count() == 0)
            let followUps = try await TrainingCampaign.query(on: app.db).filter(\.$clientID == tenant.client.id!)
                .filter(\.$name ~~ "Phishing follow-up").all()
            #expect(followUps.count == 1)
            #expect(try await Simulation.find(person.id, on: app.db)?.stage == Simulation.Stage.clicked.rawValue)
            #expect(try await Simulation.find(scanned.id, on: app.db)?.stage == Simulation.Stage.sent.rawValue)
            // The statistics count the scanner's event for this client only.
            let stats = JSON(try await app.send(.GET, "/api/v1/phishing/stats", token: tenant.token))
            #expect(stats["data"]["flagged_scanner_events"].int == 1)
            let other = try await Factory.tenant(app)
            let otherStats = JSON(try await app.send(.GET, "/api/v1/phishing/stats", token: try await Factory.token(app, for: other.admin)))
            #expect(otherStats["data"]["flagged_scanner_events"].int == 0)
        }
    }

    /// A token with a real campaign's prefix but a made-up rest is redirected (the click cannot tell without a lookup)
    /// and records nothing; its landing page is not found. A minted-length token of no campaign is not found at once.
    @Test func madeUpTokensRecordNothing() async throws {
        try await withSentCampaign { app, _, sent in
            let (tenant, _, simulations, _) = sent
            let forged = simulations[0].token.prefix(22) + RandomToken.make(bytes: 24)
            let click = try await app.send(.GET, "/api/phishing/track/click/\(forged)", headers: browser)
            #expect(click.status == .seeOther)
            #expect(click.headers.first(name: .location) == "https://phish.acme.test/phish/\(forged)")
            #expect(try await app.send(.GET, "/phish/\(forged)").status == .notFound)
            // A draft's id with any rest: the shared tracking host does not redirect to a draft's tracking URL.
            let draft = JSON(try await app.send(.POST, "/api/v1/phishing/campaigns", token: tenant.token, json: [
                "name": "Draft", "template_ids": [try await PhishingFactory.builtinTemplate(app).id!.uuidString],
                "tracking_url": "https://elsewhere.test"]))["data"]["id"].string!
            let drafted = TrackingTarget.mint(campaignID: UUID(uuidString: draft)!)
            #expect(try await app.send(.GET, "/api/phishing/track/click/\(drafted)", headers: browser).status == .notFound)
            let nowhere = TrackingTarget.mint(campaignID: UUID())
            #expect(try await app.send(.GET, "/api/phishing/track/click/\(nowhere)", headers: browser).status == .notFound)
            #expect(try await PhishingEvent.query(on: app.db).filter(\.$kind == "click").count() == 0)
            #expect(try await Enrollment.query(on: app.db).count() == 0)
        }
    }

    /// A completed campaign's links still lead to its landing page, and count nothing.
    @Test func aCompletedCampaignsClicksRedirectAndCountNothing() async throws {
        try await withSentCampaign { app, _, sent in
            let (tenant, campaign, simulations, _) = sent
            _ = try await app.send(.POST, "/api/v1/phishing/campaigns/\(campaign)/complete", token: tenant.token)
            let click = try await app.send(.GET, "/api/phishing/track/click/\(simulations[0].token)", headers: browser)
            #expect(click.status == .seeOther)
            #expect(click.headers.first(name: .location) == "https://phish.acme.test/phish/\(simulations[0].token)")
            #expect(try await PhishingEvent.query(on: app.db).filter(\.$kind == "click").count() == 0)
            #expect(try await Enrollment.query(on: app.db).count() == 0)
        }
    }

    /// Two flushers (two processes) enrolling the same person at once make one follow-up campaign and one enrolment.
    @Test func twoBatchesEnrollingAtOnceMakeOneFollowUp() async throws {
        try await withSentCampaign { app, clock, sent in
            let (tenant, _, simulations, _) = sent
            let target = try #require(try await TrackingTarget.find(tokens: [simulations[0].token], on: app.db)[simulations[0].token])
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<2 {
                    group.addTask {
                        // As the journal does: a batch that failed for any reason but its data (SQLite's "busy") is retried.
                        for attempt in 1... {
                            do {
                                return try await app.db.transaction { db in try await PhishingFollowUp.enrol([(target, clock.now())], on: db) }
                            } catch where !DatabaseAvailability.isDataError(error) && attempt < 50 {
                                try await Task.sleep(for: .milliseconds(20))
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            #expect(try await TrainingCampaign.query(on: app.db).filter(\.$clientID == tenant.client.id!)
                .filter(\.$name ~~ "Phishing follow-up").count() == 1)
            #expect(try await Enrollment.query(on: app.db).filter(\.$user.$id == simulations[0].userID).count() == 1)
        }
    }
}
