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

/// The one way Bulwark sends mail. Implementations: SMTP (SwiftNIO) and a log transport for development.
protocol Mailer: Sendable {
    /// Sends a batch, reusing one connection where the transport can; one outcome per message, in order.
    func send(_ messages: [MailMessage]) async -> [MailOutcome]
}

extension Mailer {
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
