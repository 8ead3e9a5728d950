import Foundation
import Vapor

struct MailAddress: Sendable, Codable, Equatable {
    var email: String
    var name: String?
}

/// One email with a text and an HTML part.
struct MailMessage: Sendable, Codable, Equatable {
    var from: MailAddress
    var to: [MailAddress]
    var subject: String
    var text: String
    var html: String?
    var headers: [String: String] = [:]
    /// Stable id so a retried send can be recognised downstream; generated when absent.
    var messageID: String?
    /// Envelope sender (bounce address); the From address when absent.
    var envelopeFrom: String?
}

/// What happened to one message of a batch.
enum MailOutcome: Sendable, Equatable {
    case sent
    /// 4xx or a broken connection: try again later.
    case temporaryFailure(String)
    /// 5xx: the server refused this message for good.
    case permanentFailure(String)
}

extension MailOutcome {
    /// `nil` is a delivered message; an SMTP error is temporary (4xx, connection trouble) or permanent (5xx).
    init(_ failure: SMTPError?) {
        guard let failure else { self = .sent; return }
        self = failure.isPermanent ? .permanentFailure(failure.description) : .temporaryFailure(failure.description)
    }
}

/// What to do with the next message of a conversation.
enum MailStep: Sendable {
    case send
    /// Leave this one out and go on (it was cancelled meanwhile).
    case skip
    /// End the conversation: the rest are not tried.
    case stop
}

/// The one way Bulwark sends mail. Implementations: SMTP (SwiftNIO) and a log transport for development.
protocol Mailer: Sendable {
    /// Sends `messages` in order, over one connection where the transport can. Before each message `proceed(index)`
    /// decides whether to send it, skip it, or stop. After each message sent, `record(index,
    /// outcome)` learns what became of it, and returns before the next message goes out, so the caller can make the
    /// outcome durable first: a crash then repeats at most the one message in flight.
    /// A failure of the connection itself (connect, greeting, TLS, authentication, a dropped line) is thrown as an
    /// `SMTPError`: the message in hand when it happened and those after it have no outcome.
    func deliver(_ messages: [MailMessage], proceed: (Int) async throws -> MailStep,
                 record: (Int, MailOutcome) async throws -> Void) async throws
}

extension Mailer {
    /// Every message's outcome; after a connection failure the untried ones are temporary failures (or permanent
    /// ones for a 5xx that refuses the whole conversation), as callers that retry per message expect.
    func send(_ messages: [MailMessage]) async -> [MailOutcome] {
        var outcomes: [MailOutcome] = []
        do {
            try await deliver(messages, proceed: { _ in .send }, record: { _, outcome in outcomes.append(outcome) })
        } catch {
            let failure = SMTPError.classify(error)
            while outcomes.count < messages.count { outcomes.append(MailOutcome(failure)) }
        }
        return outcomes
    }

    func send(_ message: MailMessage) async -> MailOutcome {
        await send([message]).first ?? .temporaryFailure("no outcome")
    }
}

extension Application {
    private struct MailerKey: StorageKey { typealias Value = any Mailer }

    /// The configured transport: SMTP when BULWARK_SMTP_HOST is set, otherwise the log transport.
    var mailer: any Mailer {
        get { storage[MailerKey.self] ?? LogMailer(logger: logger) }
        set { storage[MailerKey.self] = newValue }
    }
}
