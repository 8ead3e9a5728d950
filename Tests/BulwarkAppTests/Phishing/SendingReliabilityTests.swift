@testable import BulwarkApp
import Fluent
import NIOConcurrencyHelpers
import SQLKit
import Testing
import Vapor

/// A mailer double that records what it delivers and lets a test act after each message (stop, cancel, look around).
final class ScriptedMailer: Mailer, Sendable {
    let delivered = NIOLockedValueBox<[String]>([])
    /// Runs while "the message is on the wire", before its outcome is handed back.
    let onWire: @Sendable () -> Void
    let afterEach: @Sendable (Int) async throws -> Void

    init(afterEach: @escaping @Sendable (Int) async throws -> Void = { _ in }, onWire: @escaping @Sendable () -> Void = {}) {
        self.onWire = onWire
        self.afterEach = afterEach
    }

    func deliver(_ messages: [MailMessage], proceed: (Int) async throws -> MailStep,
                 record: (Int, MailOutcome) async throws -> Void) async throws {
        for (index, message) in messages.enumerated() {
            switch try await proceed(index) {
            case .stop: return
            case .skip: continue
            case .send: break
            }
            onWire()
            let count = delivered.withLockedValue { $0.append(message.to[0].email); return $0.count }
            try await record(index, .sent)
            try await afterEach(count)
        }
    }

    var recipients: [String] { delivered.withLockedValue { $0 } }
}

/// Issue 8: sending that survives stops, crashes, broken tenants and a second sender.
@Suite struct SendingReliabilityTests {
    /// A launched campaign for `people` learners plus the tenant's administrator (the audience is everyone).
    private func launchedCampaign(_ app: Application, people: Int, name: String = "Acme",
                                  fixture: SMTPFixture? = nil) async throws -> (TestTenant, String) {
        let tenant = try await Factory.tenant(app, name: name)
        for index in 0..<people { try await Factory.user(app, in: tenant, email: "p\(index)@\(name.lowercased()).test") }
        let created = try await app.send(.POST, "/api/v1/phishing/sending-profiles", token: tenant.token, json: [
            "name": "Relay", "host": "127.0.0.1", "port": fixture?.port ?? 2525, "security": "none",
            "envelope_from": "bounces@sim.acme.test", "throttle_per_minute": 1_000_000])
        let profile = try #require(JSON(created)["data"]["id"].string)
        let id = try await PhishingFactory.launched(app, tenant: tenant, profileID: profile,
                                                    templates: [try await PhishingFactory.builtinTemplate(app)])
        return (tenant, id)
    }

    private func statuses(_ app: Application, _ campaign: String) async throws -> [String: Int] {
        try await PhishingFactory.simulations(app, campaign: campaign).reduce(into: [:]) { $0[$1.sendStatus, default: 0] += 1 }
    }

    @Test func aStopFinishesTheMessageInHandAndHandsBackTheRest() async throws {
        try await withBulwark { app in
            let stop = NIOLockedValueBox(false)
            // Delivered when the stop was raised: other connections may have delivered meanwhile, beyond the third.
            let deliveredAtStop = NIOLockedValueBox(0)
            let mailerBox = NIOLockedValueBox<ScriptedMailer?>(nil)
            let mailer = ScriptedMailer { count in
                guard count == 3 else { return }
                stop.withLockedValue { $0 = true }
                deliveredAtStop.withLockedValue { $0 = mailerBox.withLockedValue { $0 }?.recipients.count ?? count }
            }
            mailerBox.withLockedValue { $0 = mailer }
            app.phishingMailerOverride = mailer
            // More people than connections, so some messages are still waiting when the stop comes.
            let people = 2 * PhishingSender.connections
            let (_, campaign) = try await launchedCampaign(app, people: people - 1)
            await #expect(throws: JobInterrupted.self) {
                try await PhishingSender(context: .test(app, stop: { stop.withLockedValue { $0 } })).sendDue()
            }
            let delivered = mailer.recipients.count
            // After the stop, at most the message each connection had in hand.
            #expect(delivered >= 3 && delivered <= deliveredAtStop.withLockedValue { $0 } + PhishingSender.connections)
            // Every delivered message is recorded as sent; nothing is left claimed.
            #expect(try await statuses(app, campaign) == ["sent": delivered, "queued": people - delivered])
            #expect(try await Simulation.query(on: app.db).filter(\.$attempts > 0).count() == 0, "no attempt charged")
            stop.withLockedValue { $0 = false }
            try await PhishingSender(context: .test(app)).sendDue()
            #expect(mailer.recipients.count == people)
            #expect(Set(mailer.recipients).count == people, "everyone exactly once")
        }
    }

    @Test func aBacklogAfterAnOutageStillGoesOutUnderTheProfilesThrottle() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let mailer = ScriptedMailer()
            app.phishingMailerOverride = mailer
            let (tenant, first) = try await launchedCampaign(app, people: 19)
            let profile = try #require(try await PhishingCampaign.find(UUID(uuidString: first), on: app.db)?.sendingProfileID)
            // A second campaign on the same profile: the throttle is the profile's, across its campaigns.
            let second = try await PhishingFactory.launched(app, tenant: tenant, profileID: profile.wire,
                                                            templates: [try await PhishingFactory.builtinTemplate(app)])
            try await SendingProfile.query(on: app.db).filter(\.$id == profile).set(\.$throttlePerMinute, to: 60).update()
            // Everything is overdue, as after an outage.
            try await app.db.sql.raw("UPDATE phishing_simulations SET send_at = \(bind: clock.now().addingTimeInterval(-3600))").run()
            try await PhishingSender(context: .test(app)).sendDue()
            // 60 a minute over a 10 s window: 10 now, none more until the window moves on.
            #expect(mailer.recipients.count == 10)
            try await PhishingSender(context: .test(app)).sendDue()
            #expect(mailer.recipients.count == 10)
            clock.advance(by: 11)
            try await PhishingSender(context: .test(app)).sendDue()
            #expect(mailer.recipients.count == 20)
            for _ in 0..<4 {
                clock.advance(by: 11)
                try await PhishingSender(context: .test(app)).sendDue()
            }
            #expect(mailer.recipients.count == 40)
            #expect(Set(mailer.recipients).count == 20, "each person once per campaign")
            #expect(try await statuses(app, second) == ["sent": 20])
        }
    }

    @Test func campaignsHeldBackByASlowProfileDoNotCrowdOutOtherTenants() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let mailer = ScriptedMailer()
            app.phishingMailerOverride = mailer
            // Tenant A: nine backlogged campaigns, launched first, behind a profile allowed one message a minute.
            let (slowTenant, first) = try await launchedCampaign(app, people: 3, name: "Slow")
            let slowProfile = try #require(try await PhishingCampaign.find(UUID(uuidString: first), on: app.db)?.sendingProfileID)
            for _ in 0..<8 {
                _ = try await PhishingFactory.launched(app, tenant: slowTenant, profileID: slowProfile.wire,
                                                       templates: [try await PhishingFactory.builtinTemplate(app)])
            }
            try await SendingProfile.query(on: app.db).filter(\.$id == slowProfile).set(\.$throttlePerMinute, to: 1).update()
            try await app.db.sql.raw("UPDATE phishing_simulations SET send_at = \(bind: clock.now().addingTimeInterval(-3600))").run()
            // Tenant B, launched last, on its own profile.
            let (_, other) = try await launchedCampaign(app, people: 5, name: "Other")
            clock.advance(by: 1)
            try await PhishingSender(context: .test(app)).sendDue()
            clock.advance(by: 2)
            try await PhishingSender(context: .test(app)).sendDue()
            #expect(try await statuses(app, other) == ["sent": 6], "the other tenant is served at once")
            #expect(mailer.recipients.filter { $0.hasSuffix("@slow.test") || $0.contains("slow") }.count <= 1,
                    "the slow profile stays at its rate")
        }
    }

    @Test func eachOutcomeIsCommittedBeforeTheNextMessageGoesOut() async throws {
        try await withBulwark { app in
            let seen = NIOLockedValueBox<[(delivered: Int, stored: Int)]>([])
            let mailer = ScriptedMailer { count in
                let stored = try await Simulation.query(on: app.db).filter(\.$sendStatus == "sent").count()
                seen.withLockedValue { $0.append((count, stored)) }
            }
            app.phishingMailerOverride = mailer
            _ = try await launchedCampaign(app, people: 7)
            try await PhishingSender(context: .test(app)).sendDue()
            // When a message has been delivered, its outcome is already durable (before the next goes out); with the
            // whole batch committed at the end, nothing would be stored yet while the batch is still going.
            let observations = seen.withLockedValue { $0 }
            #expect(observations.count == 8)
            #expect(observations.allSatisfy { $0.stored >= 1 })
            #expect(observations.contains { $0.stored >= $0.delivered - PhishingSender.connections + 1 && $0.delivered > 4 })
        }
    }

    @Test func oneBrokenCampaignDoesNotStallTheOthers() async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        try await withBulwark { app in
            let (_, broken) = try await launchedCampaign(app, people: 2, name: "Broken", fixture: fixture)
            let (_, healthy) = try await launchedCampaign(app, people: 3, name: "Healthy", fixture: fixture)
            // The broken tenant's profile password was sealed under another key: it cannot be opened any more.
            try await app.db.sql.raw("UPDATE phishing_sending_profiles SET password_sealed = 'not-a-sealed-box' WHERE id = (SELECT sending_profile_id FROM phishing_campaigns WHERE id = \(bind: UUID(uuidString: broken)!))").run()
            #expect(try await PhishingSender(context: .test(app)).sendDue() == 4)
            #expect(try await statuses(app, healthy) == ["sent": 4])
            #expect(try await statuses(app, broken) == ["queued": 3])
            let campaign = try #require(try await PhishingCampaign.find(UUID(uuidString: broken), on: app.db))
            #expect(campaign.lastError?.contains("password") == true)
            #expect(campaign.sendRetryAt != nil)
            #expect(try await Simulation.query(on: app.db).filter(\.$attempts > 0).count() == 0)
        }
        await fixture.stop()
    }

    /// An outcome written again (its commit went through but the answer was lost, so the sender retried) stores one
    /// event, and the simulation stays sent.
    @Test func anOutcomeWrittenTwiceIsStoredOnce() async throws {
        try await withBulwark { app in
            let (_, campaign) = try await launchedCampaign(app, people: 1)
            let simulation = try #require(try await PhishingFactory.simulations(app, campaign: campaign).first)
            let outcome = SendOutcome(simulation: simulation, worker: "w1", outcome: .sent, at: Date())
            for _ in 0..<2 { try await app.db.transaction { db in try await SendOutcome.write([outcome], on: db) } }
            #expect(try await PhishingEvent.query(on: app.db).filter(\.$simulationID == simulation.id!).filter(\.$kind == "sent").count() == 1)
            #expect(try await Simulation.find(simulation.id, on: app.db)?.sendStatus == "sent")
        }
    }

    /// Campaigns sending in one round share its connections: two campaigns of 40 open at most 32 sessions between
    /// them (32 each would have opened 40).
    @Test func campaignsInOneRoundShareItsConnections() async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        try await withBulwark { app in
            let (_, first) = try await launchedCampaign(app, people: 39, name: "Acme", fixture: fixture)
            let (_, second) = try await launchedCampaign(app, people: 39, name: "Globex", fixture: fixture)
            #expect(try await PhishingSender(context: .test(app)).sendDue() == 80)
            #expect(try await statuses(app, first) == ["sent": 40])
            #expect(try await statuses(app, second) == ["sent": 40])
            #expect(fixture.connections <= PhishingSender.connections)
            #expect(fixture.connections >= 2 * PhishingSender.minimumConnections)
        }
        await fixture.stop()
    }

    @Test func aRefusedConnectionPausesTheProfileChargesNoAttemptAndResumes() async throws {
        let fixture = try SMTPFixture(greeting: "554 5.7.1 Service unavailable")
        try await fixture.start()
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let (tenant, campaign) = try await launchedCampaign(app, people: 5, fixture: fixture)
            #expect(try await PhishingSender(context: .test(app)).sendDue() == 0)
            #expect(try await statuses(app, campaign) == ["queued": 6], "a refused greeting fails nobody")
            #expect(try await Simulation.query(on: app.db).filter(\.$attempts > 0).count() == 0)
            let profiles = JSON(try await app.send(.GET, "/api/v1/phishing/sending-profiles", token: try await Factory.token(app, for: tenant.admin)))
            #expect(profiles["data"][0]["status"].string == "paused")
            #expect(profiles["data"][0]["pause_reason"].string?.contains("554") == true)
            #expect(try await PhishingSender(context: .test(app)).sendDue() == 0, "nothing is tried while paused")
            #expect(fixture.connections == 1)
            fixture.greeting = "220 fixture.test ESMTP ready"
            clock.advance(by: 31)
            #expect(try await PhishingSender(context: .test(app)).sendDue() == 6)
            let resumed = JSON(try await app.send(.GET, "/api/v1/phishing/sending-profiles", token: try await Factory.token(app, for: tenant.admin)))
            #expect(resumed["data"][0]["status"].string == "active")
        }
        await fixture.stop()
    }

    @Test func aCancelStopsMessagesAlreadyClaimed() async throws {
        try await withBulwark { app in
            let cancelled = NIOLockedValueBox(false)
            let deliveredWhenCancelled = NIOLockedValueBox(0)
            let campaignID = NIOLockedValueBox<String?>(nil)
            let token = NIOLockedValueBox<String?>(nil)
            // Counted as each message goes on the wire (an outcome may wait for its write behind the cancel's locks).
            let onWire = NIOLockedValueBox(0)
            let mailer = ScriptedMailer(afterEach: { count in
                guard count == 1, let id = campaignID.withLockedValue({ $0 }), let token = token.withLockedValue({ $0 }) else { return }
                let response = try await app.send(.DELETE, "/api/v1/phishing/campaigns/\(id)", token: token)
                cancelled.withLockedValue { $0 = response.status == .ok }
                deliveredWhenCancelled.withLockedValue { $0 = onWire.withLockedValue { $0 } }
            }, onWire: { onWire.withLockedValue { $0 += 1 } })
            app.phishingMailerOverride = mailer
            // More people than connections, so some messages are still waiting when the cancel comes (the admin is one more).
            let people = 2 * PhishingSender.connections
            let (tenant, campaign) = try await launchedCampaign(app, people: people)
            campaignID.withLockedValue { $0 = campaign }
            token.withLockedValue { $0 = tenant.token }
            try await PhishingSender(context: .test(app)).sendDue()
            #expect(cancelled.withLockedValue { $0 })
            // After the cancel committed, only messages already on the wire (at most one per connection) went out.
            #expect(mailer.recipients.count - deliveredWhenCancelled.withLockedValue { $0 } <= PhishingSender.connections)
            #expect(mailer.recipients.count < people + 1)
            let counts = try await statuses(app, campaign)
            #expect(counts["sent", default: 0] == mailer.recipients.count)
            #expect(counts["cancelled", default: 0] == people + 1 - mailer.recipients.count)
        }
    }

    /// A campaign this process stopped sends nothing more, whatever a read of its rows said a moment earlier (the
    /// check of the next message is read while the previous outcome is written, possibly before the cancel commits).
    @Test func aCampaignThisProcessStoppedSendsNothingMore() async throws {
        try await withBulwark { app in
            let mailer = ScriptedMailer()
            app.phishingMailerOverride = mailer
            let (_, campaign) = try await launchedCampaign(app, people: 3)
            StoppedCampaigns.note(try #require(UUID(uuidString: campaign)))
            #expect(try await PhishingSender(context: .test(app)).sendDue() == 0)
            #expect(mailer.recipients.isEmpty)
        }
    }

    /// A round that outlasts the lease (a slow relay) keeps its claims: a second worker arriving after the lease finds
    /// nothing abandoned to take over.
    @Test func aRoundLongerThanTheLeaseKeepsItsClaims() async throws {
        try await withBulwark { app in
            // Three messages per connection, a second each: the third waits claimed for two seconds; the lease is one.
            let mailer = ScriptedMailer(afterEach: { _ in try await Task.sleep(for: .seconds(1)) })
            app.phishingMailerOverride = mailer
            let (_, campaign) = try await launchedCampaign(app, people: 3 * PhishingSender.connections - 1)
            let first = JobContext(app: app, worker: "sender-a", lease: 1, shouldStop: { false })
            let second = JobContext(app: app, worker: "sender-b", lease: 1, shouldStop: { false })
            let sending = Task { try await PhishingSender(context: first).sendDue() }
            try await Task.sleep(for: .milliseconds(1_500))
            #expect(try await PhishingSender(context: second).sendDue() == 0, "nothing of the running round looked abandoned")
            #expect(try await sending.value == 3 * PhishingSender.connections)
            #expect(Set(mailer.recipients).count == mailer.recipients.count)
            #expect(try await statuses(app, campaign) == ["sent": 3 * PhishingSender.connections])
        }
    }

    @Test func twoSendersAtOnceSendEachMessageOnce() async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        try await withBulwark { app in
            let (_, campaign) = try await launchedCampaign(app, people: 40, fixture: fixture)
            try await withThrowingTaskGroup(of: Int.self) { group in
                for worker in ["sender-a", "sender-b"] {
                    group.addTask { try await PhishingSender(context: .test(app, worker: worker)).sendDue() }
                }
                try await group.waitForAll()
            }
            let recipients = fixture.messages.flatMap(\.to)
            #expect(recipients.count == 41)
            #expect(Set(recipients).count == 41)
            #expect(try await statuses(app, campaign) == ["sent": 41])
        }
        await fixture.stop()
    }

    @Test func launchingTwiceAtOnceCreatesOneSetOfSimulations() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            for index in 0..<20 { try await Factory.user(app, in: tenant, email: "l\(index)@acme.test") }
            let profileResponse = try await app.send(.POST, "/api/v1/phishing/sending-profiles", token: tenant.token, json: [
                "name": "Relay", "host": "127.0.0.1", "port": 2525, "security": "none", "envelope_from": "b@acme.test"])
            let profile = try #require(JSON(profileResponse)["data"]["id"].string)
            let created = JSON(try await app.send(.POST, "/api/v1/phishing/campaigns", token: tenant.token, json: [
                "name": "Twice", "template_ids": [try await PhishingFactory.builtinTemplate(app).id!.uuidString],
                "sending_profile_id": profile]))
            let id = try #require(created["data"]["id"].string)
            let statuses = try await withThrowingTaskGroup(of: HTTPStatus.self) { group in
                for _ in 0..<2 { group.addTask { try await app.send(.POST, "/api/v1/phishing/campaigns/\(id)/send", token: tenant.token).status } }
                return try await group.reduce(into: [HTTPStatus]()) { $0.append($1) }
            }
            #expect(statuses.sorted { $0.code < $1.code } == [.ok, .badRequest])
            #expect(try await PhishingFactory.simulations(app, campaign: id).count == 21)
        }
    }

    @Test func claimsAndSendsReadTheClockAtTheMomentTheyHappen() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            // Each SMTP conversation takes ten (simulated) seconds.
            app.phishingMailerOverride = ScriptedMailer(onWire: { clock.advance(by: 10) })
            let (_, campaign) = try await launchedCampaign(app, people: 11)
            clock.advance(by: 1)
            let runStarted = clock.now()
            try await PhishingSender(context: .test(app)).sendDue()
            let sentAt = try await PhishingFactory.simulations(app, campaign: campaign).compactMap(\.sentAt).sorted()
            #expect(sentAt.count == 12)
            // Stamped when each went out, not when the run began: a run's late messages carry late times.
            #expect(sentAt.allSatisfy { $0 > runStarted })
            #expect(sentAt.last!.timeIntervalSince(runStarted) >= 30)
        }
    }
}
