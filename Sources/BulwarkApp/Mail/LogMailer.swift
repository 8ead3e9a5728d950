import Logging
import NIOConcurrencyHelpers

/// Development transport: logs each message instead of sending it, and keeps the last ones for inspection.
final class LogMailer: Mailer {
    private let logger: Logger
    private let sent = NIOLockedValueBox<[MailMessage]>([])

    init(logger: Logger) { self.logger = logger }

    func send(_ messages: [MailMessage]) async -> [MailOutcome] {
        for message in messages {
            logger.notice("Mail (log transport) to \(message.to.map(\.email).joined(separator: ", ")): \(message.subject)")
        }
        sent.withLockedValue { $0 = Array(($0 + messages).suffix(1000)) }
        return messages.map { _ in .sent }
    }

    var messages: [MailMessage] { sent.withLockedValue { $0 } }
}
