@testable import BulwarkApp
import Fluent
import Testing
import Vapor
import VaporTesting

@Suite struct TrackingTests {
    static let browser = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"

    /// A sent campaign with one learner; returns the learner's simulation and the admin's fresh token.
    private func sentSimulation(_ app: Application, clock: ManualClock, fixture: SMTPFixture,
                                extra: [String: Any] = [:]) async throws -> (TestTenant, Simulation, String, User) {
        let tenant = try await Factory.tenant(app)
        let learner = try await Factory.user(app, in: tenant, email: "target@acme.test", department: "Ops")
        let profile = try await PhishingFactory.profile(app, tenant: tenant, fixture: fixture)
        let campaign = try await PhishingFactory.launched(app, tenant: tenant, profileID: profile,
                                                          templates: [try await PhishingFactory.builtinTemplate(app)], extra: extra)
        clock.advance(by: 60)
        try await PhishingSender(context: .test(app)).sendDue()
        clock.advance(by: 600)
        let simulation = try #require(try await PhishingFactory.simulations(app, campaign: campaign).first { $0.email == "target@acme.test" })
        return (tenant, simulation, campaign, learner)
    }

    private func headers(_ agent: String = TrackingTests.browser) -> HTTPHeaders { ["User-Agent": agent] }

    @Test func openClickSubmitMoveForwardOnly() async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let module = try await TrainingFactory.builtinModule(app)
            let (tenant, simulation, campaign, learner) = try await sentSimulation(app, clock: clock, fixture: fixture,
                                                                                    extra: ["training_module_id": module.id!.uuidString])
            let pixel = try await app.send(.GET, "/api/phishing/track/open/\(simulation.token)", headers: headers())
            #expect(pixel.headers.contentType?.subType == "gif")
            #expect(pixel.headers.first(name: .cacheControl)?.contains("no-store") == true)
            #expect(pixel.body.readableBytes == TrackingController.pixel.readableBytes)

            let click = try await app.send(.GET, "/api/phishing/track/click/\(simulation.token)?redirect=https://evil.test", headers: headers())
            #expect(click.status == .seeOther)
            #expect(click.headers.first(name: .location) == "https://phish.acme.test/phish/\(simulation.token)")

            let landing = try await app.send(.GET, "/phish/\(simulation.token)")
            #expect(landing.body.string.contains("/api/phishing/track/submit/\(simulation.token)"))
            #expect(landing.headers.first(name: "Content-Security-Policy")?.contains("sandbox") == true)

            let submitted = try await app.send(.POST, "/api/phishing/track/submit/\(simulation.token)",
                                               body: "email=target%40acme.test&password=Winter2026%21", contentType: .urlEncodedForm, headers: headers())
            #expect(submitted.body.string.contains("This was a simulation"))
            _ = try await app.send(.GET, "/api/phishing/track/open/\(simulation.token)", headers: headers())

            let stored = try #require(try await Simulation.find(simulation.id, on: app.db))
            #expect(stored.stage == Simulation.Stage.submitted.rawValue, "a later open does not move it back")
            #expect(stored.openedAt != nil && stored.clickedAt != nil && stored.submittedAt != nil)
            let submit = try #require(try await PhishingEvent.query(on: app.db).filter(\.$kind == "submit").first())
            #expect(submit.details?.contains("email") == true)
            #expect(submit.details?.contains("password") == false, "not even the name of a secret field")
            #expect(submit.details?.contains("Winter2026") == false)

            // Clicking enrols the person in the campaign's training module.
            #expect(try await TrainingFactory.enrollments(app, of: learner).map(\.$module.id) == [module.id!])

            let token = try await Factory.token(app, for: tenant.admin)
            let timeline = JSON(try await app.send(.GET, "/api/v1/phishing/simulations/\(simulation.id!)", token: token))
            #expect(timeline["data"]["timeline"].array.compactMap { $0["kind"].string } == ["sent", "open", "click", "submit", "open"])
            #expect(timeline["data"]["simulation"]["status"].string == "submitted")
            try await expectOtherTenantGets404(app, .GET, "/api/v1/phishing/simulations/\(simulation.id!)")
            try await expectOtherTenantGets404(app, .GET, "/api/v1/phishing/campaigns/\(campaign)/results")
            let results = JSON(try await app.send(.GET, "/api/v1/phishing/campaigns/\(campaign)/results?status=submitted&department=Ops", token: token))
            #expect(results["data"].array.map { $0["email"].string } == ["target@acme.test"])
        }
        await fixture.stop()
    }

    @Test func scannersAreKeptButFlaggedAndNotCounted() async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        let clock = ManualClock()
        try await withBulwark(clock: clock, adjust: {
            $0.phishingGatewayRanges = [IPNetwork("203.0.113.0/24")!]
            $0.trustedProxies = [IPNetwork(Application.testPeer)!]  // the gateway's address arrives through our proxy
        }) { app in
            let (_, simulation, _, _) = try await sentSimulation(app, clock: clock, fixture: fixture)
            _ = try await app.send(.GET, "/api/phishing/track/click/\(simulation.token)", headers: headers("Mozilla/5.0 (compatible; Barracuda Sentinel)"))
            _ = try await app.send(.HEAD, "/api/phishing/track/click/\(simulation.token)", headers: headers())
            _ = try await app.send(.GET, "/api/phishing/track/click/\(simulation.token)", headers: headers("python-requests/2.31"))
            var gateway = headers()
            gateway.add(name: "X-Forwarded-For", value: "203.0.113.7")
            _ = try await app.send(.GET, "/api/phishing/track/click/\(simulation.token)", headers: gateway)
            let events = try await PhishingEvent.query(on: app.db).filter(\.$kind == "click").all()
            #expect(events.count == 4)
            #expect(events.allSatisfy { $0.isBot })
            #expect(Set(events.compactMap(\.botReason)).count == 4)
            #expect(try await Simulation.find(simulation.id, on: app.db)?.stage == Simulation.Stage.sent.rawValue)
        }
        await fixture.stop()
    }

    @Test func clicksSecondsAfterDeliveryAreFlagged() async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let tenant = try await Factory.tenant(app)
            let profile = try await PhishingFactory.profile(app, tenant: tenant, fixture: fixture)
            let campaign = try await PhishingFactory.launched(app, tenant: tenant, profileID: profile, templates: [try await PhishingFactory.builtinTemplate(app)])
            clock.advance(by: 60)
            try await PhishingSender(context: .test(app)).sendDue()
            clock.advance(by: 2)
            let simulation = try #require(try await PhishingFactory.simulations(app, campaign: campaign).first)
            _ = try await app.send(.GET, "/api/phishing/track/click/\(simulation.token)", headers: headers())
            #expect(try await PhishingEvent.query(on: app.db).filter(\.$kind == "click").first()?.botReason == "seconds_after_delivery")
        }
        await fixture.stop()
    }

    @Test func unknownTokensRecordNothing() async throws {
        try await withBulwark { app in
            let token = RandomToken.make(bytes: 24)
            let pixel = try await app.send(.GET, "/api/phishing/track/open/\(token)", headers: headers())
            #expect(pixel.status == .ok)
            #expect(pixel.headers.contentType?.subType == "gif")
            #expect(try await app.send(.GET, "/api/phishing/track/click/\(token)").status == .notFound)
            #expect(try await app.send(.POST, "/api/phishing/track/submit/\(token)", body: "a=b", contentType: .urlEncodedForm).status == .notFound)
            expectError(try await app.send(.POST, "/api/phishing/report/\(token)"), .notFound, "NOT_FOUND")
            expectError(try await app.send(.GET, "/api/v1/phishing/training/\(token)"), .notFound, "NOT_FOUND")
            // Outside the token alphabet (a NUL, which PostgreSQL refuses in text; a space; a dot): nothing is looked up
            // or kept, and the pixel answers alike.
            for odd in ["\(token.prefix(20))%00", "\(token.prefix(20))%20x", "\(token.prefix(20)).x"] {
                #expect(try await app.send(.GET, "/api/phishing/track/open/\(odd)", headers: headers()).status == .ok)
                #expect(try await app.send(.GET, "/api/phishing/track/click/\(odd)").status == .notFound)
            }
            #expect(TrackingTarget.plausibleToken("\(token.prefix(20))\u{0}") == nil)
            #expect(TrackingTarget.plausibleToken(String(token.prefix(20))) != nil)
            #expect(try await PhishingEvent.query(on: app.db).count() == 0)
        }
    }

    @Test func reportingTrainingPayloadAndFormConfig() async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let (tenant, simulation, _, _) = try await sentSimulation(app, clock: clock, fixture: fixture)
            let report = try await app.send(.POST, "/api/phishing/report/\(simulation.token)", headers: headers())
            #expect(report.status == .ok)
            #expect(report.headers.first(name: .accessControlAllowOrigin) == "*")
            let preflight = try await app.send(.OPTIONS, "/api/phishing/report/\(simulation.token)")
            #expect(preflight.headers.first(name: .accessControlAllowMethods)?.contains("POST") == true)
            #expect(try await Simulation.find(simulation.id, on: app.db)?.reportedAt != nil)
            let payload = JSON(try await app.send(.GET, "/api/v1/phishing/training/\(simulation.token)"))
            #expect(payload["data"]["red_flags"].array.count >= 2)
            #expect(payload["data"]["training_module"].isNull)
            let form = JSON(try await app.send(.GET, "/api/v1/phishing/training/\(simulation.token)/form"))
            #expect(form["data"]["fields"].array.compactMap(\.string) == ["email", "password"])
            #expect(form["data"]["records_values"].bool == false)
            let stats = JSON(try await app.send(.GET, "/api/v1/phishing/stats", token: try await Factory.token(app, for: tenant.admin)))
            #expect(stats["data"]["totals"]["sent"].int == 2)
            #expect(stats["data"]["totals"]["reported"].int == 1)
            #expect(stats["data"]["totals"]["report_rate"].double == 50)
            #expect(stats["data"]["median_minutes_to_first_report"].double == 10)
            // Reporting shows on the team page and earns leaderboard points.
            let board = JSON(try await app.send(.GET, "/api/v1/leaderboard", token: try await Factory.token(app, for: tenant.admin)))
            #expect(board["data"].array.first { $0["user_id"].string == simulation.userID.wire }?["points"].int == LeaderboardService.reportPoints)
            let manager = try await Factory.user(app, in: tenant, role: .manager)
            let target = try #require(try await User.find(simulation.userID, on: app.db))
            target.$manager.id = manager.id
            try await target.save(on: app.db)
            let team = JSON(try await app.send(.GET, "/api/v1/team", token: try await Factory.token(app, for: manager)))
            #expect(team["data"][0]["phishing"]["reported"].int == 1)
            #expect(team["data"][0]["phishing"]["sent"].int == 1)
        }
        await fixture.stop()
    }

    /// In memory and on a SQLite file with its journal beside it (WAL, busy timeout, one connection per event loop):
    /// every answered open is stored, and the simulation moves once. A signed-in read that follows the burst sees all
    /// of it, although the journal writes to the database behind the answers.
    @Test(arguments: [false, true]) func aBurstOfOpensStoresEveryEvent(onFile: Bool) async throws {
        let path = NSTemporaryDirectory() + "bulwark-tracking-\(UUID().uuidString).sqlite"
        defer {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            try? FileManager.default.removeItem(atPath: path + ".journal")
        }
        let fixture = try SMTPFixture()
        try await fixture.start()
        let clock = ManualClock()
        try await withBulwark(clock: clock, adjust: {
            guard onFile else { return }
            if TestDatabase.postgresURL == nil { $0.database = .sqliteFile(path) }
            $0.journalDirectory = path + ".journal"
        }) { app in
            let (tenant, simulation, campaign, _) = try await sentSimulation(app, clock: clock, fixture: fixture)
            let token = try await Factory.token(app, for: tenant.admin)
            try await withThrowingTaskGroup(of: HTTPStatus.self) { group in
                for _ in 0..<200 {
                    group.addTask {
                        try await app.send(.GET, "/api/phishing/track/open/\(simulation.token)", headers: headers(), settle: false).status
                    }
                }
                for try await status in group { #expect(status == .ok) }
            }
            let results = JSON(try await app.send(.GET, "/api/v1/phishing/campaigns/\(campaign)/results?status=opened", token: token,
                                                  settle: false))
            #expect(results["data"].array.map { $0["email"].string } == ["target@acme.test"])
            let timeline = JSON(try await app.send(.GET, "/api/v1/phishing/simulations/\(simulation.id!)", token: token, settle: false))
            #expect(timeline["data"]["timeline"].array.filter { $0["kind"].string == "open" }.count == 200)
            // One more, read at once: the journal's flusher has not even woken yet when the read arrives.
            _ = try await app.send(.GET, "/api/phishing/track/open/\(simulation.token)", headers: headers(), settle: false)
            let next = JSON(try await app.send(.GET, "/api/v1/phishing/simulations/\(simulation.id!)", token: token, settle: false))
            #expect(next["data"]["timeline"].array.filter { $0["kind"].string == "open" }.count == 201)
            #expect(try await PhishingEvent.query(on: app.db).filter(\.$kind == "open").count() == 201)
            #expect(try await Simulation.find(simulation.id, on: app.db)?.stage == Simulation.Stage.opened.rawValue)
        }
        await fixture.stop()
    }

    /// On a SQLite file the flusher writes on a connection of its own: while one of its transactions is open, every
    /// event loop's connection still answers requests. (On a shared one, the requests of the flusher's loop queued
    /// behind each batch, and here the read on that loop would time out.)
    @Test func theFlusherHoldsNoEventLoopsConnection() async throws {
        guard TestDatabase.postgresURL == nil else { return }
        let path = NSTemporaryDirectory() + "bulwark-writer-\(UUID().uuidString).sqlite"
        defer {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            try? FileManager.default.removeItem(atPath: path + ".journal")
        }
        try await withBulwark(adjust: {
            $0.database = .sqliteFile(path)
            $0.journalDirectory = path + ".journal"
            $0.databasePoolTimeout = 2
        }) { app in
            _ = try await Factory.tenant(app)
            let everyone = try await User.query(on: app.db).count()
            #expect(everyone > 0)
            try await app.trackingWriter.db.transaction { writer in
                // A write, so the transaction holds SQLite's write lock as a batch does; readers go on beside it.
                try await writer.sql.raw("UPDATE users SET locale = locale").run()
                for eventLoop in app.eventLoopGroup.makeIterator() {
                    let request = try #require(app.databases.database(.sqlite, logger: app.logger, on: eventLoop))
                    let people = try await request.sql.raw("SELECT COUNT(*) AS n FROM users").first()?.decode(column: "n", as: Int.self)
                    #expect(people == everyone)
                }
            }
        }
    }

    /// One batch holding several people's events (and a scanner's) moves each simulation once, to its furthest stage,
    /// keeping the first time of each stage, without touching a time already stored.
    @Test func aBatchMovesEachSimulationToItsFurthestStage() async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let tenant = try await Factory.tenant(app)
            for index in 0..<3 { _ = try await Factory.user(app, in: tenant, email: "person\(index)@acme.test") }
            let profile = try await PhishingFactory.profile(app, tenant: tenant, fixture: fixture)
            let campaign = try await PhishingFactory.launched(app, tenant: tenant, profileID: profile,
                                                              templates: [try await PhishingFactory.builtinTemplate(app)])
            clock.advance(by: 60)
            try await PhishingSender(context: .test(app)).sendDue()
            let all = try await PhishingFactory.simulations(app, campaign: campaign)
            let byEmail = Dictionary(uniqueKeysWithValues: all.map { ($0.email, $0) })
            let (a, b, c) = (byEmail["person0@acme.test"]!, byEmail["person1@acme.test"]!, byEmail["person2@acme.test"]!)
            let earlier = Date(timeIntervalSince1970: 1_800_000_000)
            c.openedAt = earlier
            c.stage = Simulation.Stage.opened.rawValue
            try await c.save(on: app.db)
            let t = (0..<5).map { earlier.addingTimeInterval(Double(100 + $0)) }
            @Sendable func event(_ simulation: Simulation, _ kind: String, _ at: Date, bot: String? = nil) -> TrackingEvent {
                TrackingEvent(simulationID: simulation.id!, campaignID: simulation.$campaign.id, clientID: simulation.clientID, kind: kind,
                              occurredAt: at, ip: nil, userAgent: nil, botReason: bot, details: nil)
            }
            let batch = [
                event(a, "click", t[2]), event(a, "open", t[1]), event(a, "open", t[3]),
                event(b, "report", t[4]), event(b, "submit", t[0], bot: "head_request"),
                event(c, "submit", t[2]), event(c, "open", t[1]),
            ]
            try await app.db.transaction { db in try await TrackingEventWriter.write(batch, on: db) }
            #expect(try await PhishingEvent.query(on: app.db).count() >= 7)
            let storedA = try #require(try await Simulation.find(a.id, on: app.db))
            #expect(storedA.stage == Simulation.Stage.clicked.rawValue)
            #expect(storedA.openedAt == t[1] && storedA.clickedAt == t[2] && storedA.submittedAt == nil && storedA.reportedAt == nil)
            let storedB = try #require(try await Simulation.find(b.id, on: app.db))
            #expect(storedB.stage == Simulation.Stage.sent.rawValue, "a scanner's submit moves nothing")
            #expect(storedB.reportedAt == t[4] && storedB.openedAt == nil && storedB.submittedAt == nil)
            let storedC = try #require(try await Simulation.find(c.id, on: app.db))
            #expect(storedC.stage == Simulation.Stage.submitted.rawValue)
            #expect(storedC.openedAt == earlier, "the first open stays")
            #expect(storedC.clickedAt == t[2] && storedC.submittedAt == t[2])
            let untouched = try #require(try await Simulation.find(byEmail[tenant.admin.email]!.id, on: app.db))
            #expect(untouched.stage == Simulation.Stage.sent.rawValue && untouched.openedAt == nil)
        }
        await fixture.stop()
    }

    @Test func exportStreamsResults() async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let (tenant, simulation, campaign, _) = try await sentSimulation(app, clock: clock, fixture: fixture)
            _ = try await app.send(.GET, "/api/phishing/track/click/\(simulation.token)", headers: headers())
            let token = try await Factory.token(app, for: tenant.admin)
            let csv = try await app.send(.GET, "/api/v1/phishing/campaigns/\(campaign)/export", token: token)
            let lines = csv.body.string.split(separator: "\r\n")
            #expect(lines.count == 3)
            #expect(lines.contains { $0.contains("target@acme.test") && $0.contains("clicked") })
            let json = JSON(try await app.send(.GET, "/api/v1/phishing/campaigns/\(campaign)/export?format=json&status=clicked", token: token))
            #expect(json["data"].array.count == 1)
            expectError(try await app.send(.GET, "/api/v1/phishing/campaigns/\(campaign)/export?format=pdf", token: token), .badRequest, "VALIDATION_ERROR")
            try await expectOtherTenantGets404(app, .GET, "/api/v1/phishing/campaigns/\(campaign)/export")
        }
        await fixture.stop()
    }

    @Test func knownAgentsMatchAnywhereIgnoringCase() {
        #expect(BotDetector.knownAgent(in: "Mozilla/5.0 (compatible; BARRACUDA Sentinel)") == "barracuda")
        #expect(BotDetector.knownAgent(in: "curl/8.5.0") == "curl/")
        #expect(BotDetector.knownAgent(in: "Mozilla/5.0 HeadlessChrome") == "headlesschrome", "at the very end")
        #expect(BotDetector.knownAgent(in: "bo") == nil, "shorter than every pattern")
        #expect(BotDetector.knownAgent(in: "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0 ünïcode") == nil)
        #expect(BotDetector.knownAgent(in: "Ｂot") == nil, "only ASCII folds")
        let detector = BotDetector()
        #expect(detector.reason(isHead: false, userAgent: "", ip: nil, sentAt: nil, now: Date()) == "no_user_agent")
        #expect(detector.reason(isHead: false, userAgent: "Mozilla/5.0 Slackbot-LinkExpanding", ip: nil, sentAt: nil, now: Date())
            == "scanner_user_agent:bot")
    }
}
