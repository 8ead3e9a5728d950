@testable import BulwarkApp
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import Testing

@Suite struct SMTPMailerTests {
    private func message(to email: String, subject: String = "Hello") -> MailMessage {
        MailMessage(from: MailAddress(email: "noreply@bulwark.test", name: "Bulwark"), to: [MailAddress(email: email, name: nil)],
                    subject: subject, text: "Line one\n.starts with a dot", html: "<p>Hi</p>")
    }

    private func mailer(_ fixture: SMTPFixture, host: String = "127.0.0.1", security: SMTPSettings.Security = .none,
                        auth: SMTPSettings.AuthMethod? = nil) -> SMTPMailer {
        var settings = SMTPSettings(host: host, port: fixture.port, security: security, username: fixture.credentials?.user,
                                    password: fixture.credentials?.password, authMethod: auth)
        settings.timeout = .seconds(5)
        if let certificate = fixture.certificate { settings.trustRoots = [certificate] }
        return SMTPMailer(settings: settings, group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "test"))
    }

    @Test func sendsABatchOverOneAuthenticatedConnection() async throws {
        let fixture = try SMTPFixture(credentials: ("bulwark", "s3cret"))
        try await fixture.start()
        let outcomes = await mailer(fixture).send([message(to: "a@acme.test"), message(to: "b@acme.test", subject: "Zweite Nachricht ü")])
        #expect(outcomes == [.sent, .sent])
        #expect(fixture.connections == 1)
        #expect(fixture.messages.map(\.to) == [["a@acme.test"], ["b@acme.test"]])
        #expect(fixture.messages.allSatisfy { $0.authenticatedAs == "bulwark" && $0.from == "noreply@bulwark.test" })
        let data = fixture.messages[0].data
        #expect(data.contains("Content-Type: multipart/alternative"))
        #expect(data.contains("Message-ID: <"))
        #expect(fixture.messages[1].data.contains("Subject: =?UTF-8?B?"))
        await fixture.stop()
    }

    @Test func authLogin() async throws {
        let fixture = try SMTPFixture(credentials: ("login-user", "pw"))
        try await fixture.start()
        #expect(await mailer(fixture, auth: .login).send(message(to: "a@acme.test")) == .sent)
        #expect(fixture.messages.first?.authenticatedAs == "login-user")
        await fixture.stop()
    }

    @Test func wrongCredentialsArePermanentFailures() async throws {
        let fixture = try SMTPFixture(credentials: ("bulwark", "right"))
        try await fixture.start()
        var settings = SMTPSettings(host: "127.0.0.1", port: fixture.port, security: .none, username: "bulwark", password: "wrong")
        settings.timeout = .seconds(5)
        let outcome = await SMTPMailer(settings: settings, group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "t"))
            .send(message(to: "a@acme.test"))
        guard case .permanentFailure = outcome else { Issue.record("expected a permanent failure, got \(outcome)"); return }
        #expect(fixture.messages.isEmpty)
        await fixture.stop()
    }

    @Test func fourHundredsAreTemporaryFiveHundredsPermanentAndTheBatchGoesOn() async throws {
        let fixture = try SMTPFixture(rcptReplies: ["busy@acme.test": "451 4.3.0 Try again later", "gone@acme.test": "550 5.1.1 No such user"])
        try await fixture.start()
        let outcomes = await mailer(fixture).send([message(to: "busy@acme.test"), message(to: "gone@acme.test"), message(to: "ok@acme.test")])
        // Bulwark's words and the codes only: the server's own text never travels on.
        #expect(outcomes[0] == .temporaryFailure("recipient rejected (451 4.3.0)"))
        guard case .permanentFailure = outcomes[1] else { Issue.record("expected permanent failure"); return }
        #expect(outcomes[2] == .sent)
        #expect(fixture.messages.map(\.to) == [["ok@acme.test"]])
        await fixture.stop()
    }

    @Test func pipelinesTheEnvelopeWhenTheServerOffersItAndStaysInStepAfterRefusals() async throws {
        let fixture = try SMTPFixture(rcptReplies: ["busy@acme.test": "451 4.3.0 Try again later", "gone@acme.test": "550 5.1.1 No such user"],
                                      pipelining: true)
        try await fixture.start()
        let outcomes = await mailer(fixture).send([message(to: "a@acme.test"), message(to: "busy@acme.test"),
                                                   message(to: "gone@acme.test"), message(to: "ok@acme.test")])
        #expect(outcomes[0] == .sent)
        #expect(outcomes[1] == .temporaryFailure("recipient rejected (451 4.3.0)"))
        guard case .permanentFailure = outcomes[2] else { Issue.record("expected a permanent failure, got \(outcomes[2])"); return }
        #expect(outcomes[3] == .sent)
        #expect(fixture.messages.map(\.to) == [["a@acme.test"], ["ok@acme.test"]])
        #expect(fixture.messages.allSatisfy { $0.data.contains("Content-Type: multipart/alternative") })
        #expect(fixture.pipelinedEnvelopes == 4)
        await fixture.stop()
    }

    @Test func anEnvelopeIsNotPipelinedUnlessTheServerOffersIt() async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        #expect(await mailer(fixture).send([message(to: "a@acme.test"), message(to: "b@acme.test")]) == [.sent, .sent])
        let pipelining = try SMTPFixture(pipelining: true)
        try await pipelining.start()
        #expect(await mailer(pipelining).send([message(to: "a@acme.test"), message(to: "b@acme.test")]) == [.sent, .sent])
        #expect(fixture.pipelinedEnvelopes == 0 && pipelining.pipelinedEnvelopes == 2)
        await fixture.stop()
        await pipelining.stop()
    }

    /// RFC 2920 lets a server open the data phase although every recipient was refused: the client ends it empty,
    /// charges the message, and the next message goes through on the same connection.
    @Test func aDataPhaseOpenedDespiteARefusedRecipientIsEndedEmpty() async throws {
        let fixture = try SMTPFixture(rcptReplies: ["gone@acme.test": "550 5.1.1 No such user"], pipelining: true,
                                      opensDataWithoutRecipients: true)
        try await fixture.start()
        let outcomes = await mailer(fixture).send([message(to: "gone@acme.test"), message(to: "ok@acme.test")])
        guard case .permanentFailure = outcomes[0] else { Issue.record("expected a permanent failure, got \(outcomes[0])"); return }
        #expect(outcomes[1] == .sent)
        #expect(fixture.messages.map(\.to) == [["ok@acme.test"]])
        #expect(fixture.connections == 1)
        await fixture.stop()
    }

    /// The fixture, unauthenticated, refuses MAIL (530) but still takes the recipient and opens the data phase: an
    /// empty data phase would deliver an empty message, so the conversation is broken off and nothing is delivered.
    @Test func aServerThatTakesTheRecipientAfterRefusingTheSenderGetsNoEmptyMessage() async throws {
        let fixture = try SMTPFixture(credentials: ("bulwark", "s3cret"), pipelining: true)
        try await fixture.start()
        var settings = SMTPSettings(host: "127.0.0.1", port: fixture.port, security: .none)
        settings.timeout = .seconds(5)
        let outcomes = await SMTPMailer(settings: settings, group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "t"))
            .send([message(to: "a@acme.test"), message(to: "b@acme.test")])
        #expect(outcomes.count == 2)
        #expect(outcomes.allSatisfy { $0 != .sent })
        #expect(fixture.messages.isEmpty)
        #expect(fixture.pipelinedEnvelopes == 1)
        await fixture.stop()
    }

    @Test func upgradesWithSTARTTLS() async throws {
        let fixture = try SMTPFixture(credentials: ("bulwark", "s3cret"), withTLS: true)
        try await fixture.start()
        #expect(await mailer(fixture, host: "localhost", security: .starttls).send(message(to: "tls@acme.test")) == .sent)
        #expect(fixture.messages.first?.overTLS == true)
        await fixture.stop()
    }

    @Test func speaksImplicitTLS() async throws {
        let fixture = try SMTPFixture(credentials: ("bulwark", "s3cret"), withTLS: true, implicitTLS: true)
        try await fixture.start()
        #expect(await mailer(fixture, host: "localhost", security: .tls).send(message(to: "smtps@acme.test")) == .sent)
        #expect(fixture.messages.first?.overTLS == true)
        await fixture.stop()
    }

    @Test func refusesAnUntrustedCertificate() async throws {
        let fixture = try SMTPFixture(withTLS: true, implicitTLS: true)
        try await fixture.start()
        var settings = SMTPSettings(host: "localhost", port: fixture.port, security: .tls)
        settings.timeout = .seconds(5)
        let outcome = await SMTPMailer(settings: settings, group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "t"))
            .send(message(to: "a@acme.test"))
        guard case .temporaryFailure = outcome else { Issue.record("expected a failure, got \(outcome)"); return }
        #expect(fixture.messages.isEmpty)
        await fixture.stop()
    }

    @Test func refusesToSendInClearWhenSTARTTLSIsMissing() async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        let outcome = await mailer(fixture, security: .starttls).send(message(to: "a@acme.test"))
        guard case .temporaryFailure = outcome else { Issue.record("expected a temporary failure, got \(outcome)"); return }
        #expect(fixture.messages.isEmpty)
        await fixture.stop()
    }

    @Test func anUnreachableServerIsATemporaryFailure() async throws {
        var settings = SMTPSettings(host: "127.0.0.1", port: 1, security: .none)
        settings.timeout = .seconds(2)
        let outcome = await SMTPMailer(settings: settings, group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "t"))
            .send(message(to: "a@acme.test"))
        guard case .temporaryFailure = outcome else { Issue.record("expected a temporary failure"); return }
    }

    @Test func aHangUpAfterTheMessageWentOutChargesItAndTriesNoMore() async throws {
        let fixture = try SMTPFixture(hangUpAfterData: true)
        try await fixture.start()
        let recorded = NIOLockedValueBox<[(Int, MailOutcome)]>([])
        var thrown: (any Error)?
        do {
            try await mailer(fixture).deliver([message(to: "a@acme.test"), message(to: "b@acme.test")],
                                              proceed: { _ in .send }, record: { index, outcome in
                recorded.withLockedValue { $0.append((index, outcome)) }
            })
        } catch {
            thrown = error
        }
        // The server got the message but never said so: it is charged as an attempt (not handed back uncounted, which
        // could resend it without end), and the conversation ends.
        #expect(fixture.messages.map(\.to) == [["a@acme.test"]])
        let outcomes = recorded.withLockedValue { $0 }
        #expect(outcomes.count == 1)
        #expect(outcomes.first?.0 == 0)
        #expect(outcomes.first?.1 == .temporaryFailure("no answer after the message was sent"))
        #expect(thrown is SMTPError)
        await fixture.stop()
    }

    @Test func aServerThatAnswersAByteAtATimeIsCutOff() async throws {
        let fixture = try SMTPFixture(tarpit: true)
        try await fixture.start()
        var settings = SMTPSettings(host: "127.0.0.1", port: fixture.port, security: .none)
        settings.timeout = .milliseconds(500)
        let started = Date()
        let outcome = await SMTPMailer(settings: settings, group: MultiThreadedEventLoopGroup.singleton, logger: Logger(label: "t"))
            .send(message(to: "a@acme.test"))
        // Each byte arrives well within the read timeout; the handshake deadline (twice the timeout) ends it anyway.
        guard case .temporaryFailure = outcome else { Issue.record("expected a temporary failure, got \(outcome)"); return }
        #expect(Date().timeIntervalSince(started) < 4)
        #expect(fixture.messages.isEmpty)
        await fixture.stop()
    }
}
