@testable import BulwarkApp
import Fluent
import Testing
import Vapor
import VaporTesting

@Suite struct PhishingCampaignsTests {
    @Test func launchingCreatesOneUnguessableSimulationPerPerson() async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let tenant = try await Factory.tenant(app)
            for index in 0..<4 { try await Factory.user(app, in: tenant, email: "p\(index)@acme.test", department: "Ops") }
            let profile = try await PhishingFactory.profile(app, tenant: tenant, fixture: fixture, throttle: 2)
            let templates = [try await PhishingFactory.builtinTemplate(app), try await PhishingFactory.builtinTemplate(app, key: "parcel-held")]
            let id = try await PhishingFactory.launched(app, tenant: tenant, profileID: profile, templates: templates,
                                                        extra: ["template_assignment": "ab"])
            let simulations = try await PhishingFactory.simulations(app, campaign: id)
            #expect(simulations.count == 5)
            #expect(Set(simulations.map(\.token)).count == 5)
            #expect(simulations.allSatisfy { $0.token.count >= 22 && $0.token.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" } })
            #expect(Set(simulations.map(\.templateID)).count == 2, "an A/B split uses both templates")
            // Two a minute: sends are 30 s apart.
            let times = simulations.map(\.sendAt).sorted()
            #expect(times.last!.timeIntervalSince(times.first!) == 120)
            let detail = JSON(try await app.send(.GET, "/api/v1/phishing/campaigns/\(id)", token: tenant.token))
            #expect(detail["data"]["status"].string == "sending")
            #expect(detail["data"]["progress"]["total"].int == 5)
            #expect(detail["data"]["progress"]["queued"].int == 5)
            expectError(try await app.send(.POST, "/api/v1/phishing/campaigns/\(id)/send", token: tenant.token), .badRequest, "CONFLICT")
        }
        await fixture.stop()
    }

    /// A campaign launched for later is `scheduled` until its first message goes, then `sending`, then `sent`.
    @Test func aScheduledCampaignMovesToSendingWithItsFirstMessage() async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let tenant = try await Factory.tenant(app)
            try await Factory.user(app, in: tenant, email: "later@acme.test")
            let profile = try await PhishingFactory.profile(app, tenant: tenant, fixture: fixture, throttle: 1)
            let launchAt = ISO8601DateFormatter().string(from: clock.now().addingTimeInterval(3_600))
            let id = try await PhishingFactory.launched(app, tenant: tenant, profileID: profile,
                                                        templates: [try await PhishingFactory.builtinTemplate(app)], extra: ["launch_at": launchAt])
            func status() async throws -> String? {
                JSON(try await app.send(.GET, "/api/v1/phishing/campaigns/\(id)", token: tenant.token))["data"]["status"].string
            }
            #expect(try await status() == "scheduled")
            try await PhishingSender(context: .test(app)).sendDue()
            #expect(try await status() == "scheduled", "nothing is due before the launch time")
            // One a minute: the first message goes at the launch time, the second a minute later.
            clock.advance(by: 3_600 + 1)
            try await PhishingSender(context: .test(app)).sendDue()
            #expect(try await status() == "sending")
            #expect(fixture.messages.count == 1)
            clock.advance(by: 120)
            try await PhishingSender(context: .test(app)).sendDue()
            #expect(try await status() == "sent")
            #expect(fixture.messages.count == 2)
        }
        await fixture.stop()
    }

    @Test func validation() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let invalid = try await app.send(.POST, "/api/v1/phishing/campaigns", token: tenant.token, json: [
                "template_ids": [UUID().uuidString], "sending_profile_id": UUID().uuidString, "template_assignment": "coin",
                "throttle_per_minute": 0, "tracking_url": "javascript:alert(1)", "training_module_id": "x",
                "launch_at": "2030-01-02T00:00:00Z", "send_by": "2030-01-01T00:00:00Z",
            ])
            expectError(invalid, .badRequest, "VALIDATION_ERROR")
            #expect(JSON(invalid)["error"]["details"].keys == ["name", "template_ids", "template_assignment", "sending_profile_id", "send_by",
                                                               "throttle_per_minute", "training_module_id", "tracking_url"])
            let draft = JSON(try await app.send(.POST, "/api/v1/phishing/campaigns", token: tenant.token, json: [
                "name": "No profile", "template_ids": [try await PhishingFactory.builtinTemplate(app).id!.uuidString],
            ]))
            let id = try #require(draft["data"]["id"].string)
            expectError(try await app.send(.POST, "/api/v1/phishing/campaigns/\(id)/send", token: tenant.token), .badRequest, "VALIDATION_ERROR")
            expectError(try await app.send(.POST, "/api/v1/phishing/campaigns/\(id)/complete", token: tenant.token), .badRequest, "CONFLICT")
            try await expectOtherTenantGets404(app, .GET, "/api/v1/phishing/campaigns/\(id)")
            try await expectOtherTenantGets404(app, .PUT, "/api/v1/phishing/campaigns/\(id)", json: ["name": "x"])
            try await expectOtherTenantGets404(app, .POST, "/api/v1/phishing/campaigns/\(id)/send")
            try await expectOtherTenantGets404(app, .DELETE, "/api/v1/phishing/campaigns/\(id)")
            expectError(try await app.send(.GET, "/api/v1/phishing/campaigns"), .unauthorized, "UNAUTHORIZED")
        }
    }

    @Test func sendsPersonalisedMailWithRewrittenLinksUnderTheThrottle() async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let tenant = try await Factory.tenant(app)
            try await Factory.user(app, in: tenant, email: "zoe@acme.test", firstName: "Zoe", lastName: "Zed", department: "Ops")
            let profile = try await PhishingFactory.profile(app, tenant: tenant, fixture: fixture, throttle: 1)
            let id = try await PhishingFactory.launched(app, tenant: tenant, profileID: profile, templates: [try await PhishingFactory.builtinTemplate(app)])
            #expect(try await PhishingSender(context: .test(app)).sendDue() == 1, "one a minute: only the first is due")
            clock.advance(by: 61)
            #expect(try await PhishingSender(context: .test(app)).sendDue() == 1)
            #expect(try await PhishingSender(context: .test(app)).sendDue() == 0, "nobody is sent twice")
            #expect(fixture.messages.count == 2)
            let zoe = try #require(fixture.messages.first { $0.to == ["zoe@acme.test"] })
            let simulation = try #require(try await PhishingFactory.simulations(app, campaign: id).first { $0.email == "zoe@acme.test" })
            let html = MIMETestDecoder.htmlPart(of: zoe.data)
            #expect(html.contains("Hello Zoe,"))
            #expect(html.contains("https://phish.acme.test/api/phishing/track/click/\(simulation.token)"))
            #expect(html.contains("https://phish.acme.test/api/phishing/track/open/\(simulation.token)"))
            #expect(zoe.data.contains("X-Simulation-Vendor: Bulwark"))
            #expect(zoe.data.contains("Message-ID: \(simulation.messageID)"))
            #expect(zoe.from == "bounces@sim.acme.test")
            let detail = JSON(try await app.send(.GET, "/api/v1/phishing/campaigns/\(id)", token: try await Factory.token(app, for: tenant.admin)))
            #expect(detail["data"]["status"].string == "sent")
            #expect(detail["data"]["progress"]["sent"].int == 2)
        }
        await fixture.stop()
    }

    @Test func temporaryFailuresRetryAndPermanentOnesAreRecorded() async throws {
        let fixture = try SMTPFixture(rcptReplies: ["busy@acme.test": "451 4.3.0 Try later", "gone@acme.test": "550 5.1.1 No such user"])
        try await fixture.start()
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let tenant = try await Factory.tenant(app)
            try await Factory.user(app, in: tenant, email: "busy@acme.test")
            try await Factory.user(app, in: tenant, email: "gone@acme.test")
            let profile = try await PhishingFactory.profile(app, tenant: tenant, fixture: fixture)
            let id = try await PhishingFactory.launched(app, tenant: tenant, profileID: profile, templates: [try await PhishingFactory.builtinTemplate(app)])
            clock.advance(by: 60)
            try await PhishingSender(context: .test(app)).sendDue()
            let simulations = try await PhishingFactory.simulations(app, campaign: id)
            let busy = try #require(simulations.first { $0.email == "busy@acme.test" })
            let gone = try #require(simulations.first { $0.email == "gone@acme.test" })
            #expect(busy.sendStatus == "queued")
            #expect(busy.attempts == 1)
            #expect(busy.sendAt > clock.now())
            #expect(gone.sendStatus == "error")
            #expect(gone.error?.contains("550") == true)
            let errors = JSON(try await app.send(.GET, "/api/v1/phishing/campaigns/\(id)/results?status=error", token: try await Factory.token(app, for: tenant.admin)))
            #expect(errors["data"].array.map { $0["email"].string } == ["gone@acme.test"])
        }
        await fixture.stop()
    }

    @Test func aCrashMidSendResumesWithoutDuplicates() async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let tenant = try await Factory.tenant(app)
            for index in 0..<5 { try await Factory.user(app, in: tenant, email: "c\(index)@acme.test") }
            let profile = try await PhishingFactory.profile(app, tenant: tenant, fixture: fixture)
            let id = try await PhishingFactory.launched(app, tenant: tenant, profileID: profile, templates: [try await PhishingFactory.builtinTemplate(app)])
            clock.advance(by: 60)
            // A worker claimed three simulations and died before sending them.
            let claimed = try await Simulation.query(on: app.db).filter(\.$campaign.$id == UUID(uuidString: id)!).limit(3).all()
            try await Simulation.query(on: app.db).filter(\.$id ~~ claimed.compactMap(\.id))
                .set(\.$sendStatus, to: "sending").set(\.$claimedAt, to: clock.now()).set(\.$claimedBy, to: "dead-worker").update()
            #expect(try await PhishingSender(context: .test(app)).sendDue() == 3, "the others go out; the claimed wait for their lock")
            clock.advance(by: app.settings.jobLease + 1)
            #expect(try await PhishingSender(context: .test(app)).sendDue() == 3, "the abandoned claims are picked up")
            #expect(try await PhishingSender(context: .test(app)).sendDue() == 0)
            let recipients = fixture.messages.flatMap(\.to)
            #expect(recipients.count == 6)
            #expect(Set(recipients).count == 6, "everyone exactly once")
        }
        await fixture.stop()
    }

    @Test func cancelStopsUnsentAndCompleteStopsRecording() async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let tenant = try await Factory.tenant(app)
            try await Factory.user(app, in: tenant)
            let profile = try await PhishingFactory.profile(app, tenant: tenant, fixture: fixture, throttle: 1)
            let template = try await PhishingFactory.builtinTemplate(app)
            let first = try await PhishingFactory.launched(app, tenant: tenant, profileID: profile, templates: [template])
            try await PhishingSender(context: .test(app)).sendDue()
            let cancelled = JSON(try await app.send(.DELETE, "/api/v1/phishing/campaigns/\(first)", token: tenant.token))
            #expect(cancelled["data"]["status"].string == "cancelled")
            #expect(cancelled["data"]["progress"]["sent"].int == 1)
            #expect(cancelled["data"]["progress"]["cancelled"].int == 1)
            clock.advance(by: 600)
            #expect(try await PhishingSender(context: .test(app)).sendDue() == 0)

            let second = try await PhishingFactory.launched(app, tenant: tenant, profileID: profile, templates: [template])
            clock.advance(by: 600)
            try await PhishingSender(context: .test(app)).sendDue()
            let token = try await Factory.token(app, for: tenant.admin)
            let completed = JSON(try await app.send(.POST, "/api/v1/phishing/campaigns/\(second)/complete", token: token))
            #expect(completed["data"]["status"].string == "completed")
            let simulation = try #require(try await PhishingFactory.simulations(app, campaign: second).first)
            _ = try await app.send(.GET, "/api/phishing/track/open/\(simulation.token)", headers: ["User-Agent": "Mozilla/5.0"])
            #expect(try await PhishingEvent.query(on: app.db).filter(\.$kind == "open").count() == 0)
        }
        await fixture.stop()
    }
}

/// Decodes the base64 HTML part the MIME renderer produces.
enum MIMETestDecoder {
    static func htmlPart(of data: String) -> String {
        guard let start = data.range(of: "Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n") else { return "" }
        let rest = data[start.upperBound...]
        let encoded = rest.components(separatedBy: "\r\n").prefix { !$0.hasPrefix("--") && !$0.isEmpty }.joined()
        return Data(base64Encoded: encoded).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }
}
