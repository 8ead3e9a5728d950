import Logging
import NIOConcurrencyHelpers

/// Development transport: logs each message instead of sending it, and keeps the last ones for inspection.
final class LogMailer: Mailer {
    private let logger: Logger
    private let sent = NIOLockedValueBox<[MailMessage]>([])

    init(logger: Logger) { self.logger = logger }

    func deliver(_ messages: [MailMessage], proceed: (Int) async throws -> MailStep,
                 record: (Int, MailOutcome) async throws -> Void) async throws {
        for (index, message) in messages.enumerated() {
            switch try await proceed(index) {
            case .stop: return
            case .skip: continue
            case .send: break
            }
            logger.notice("Mail (log transport) to \(message.to.map(\.email).joined(separator: ", ")): \(message.subject)")
            sent.withLockedValue { $0 = Array(($0 + [message]).suffix(1000)) }
            try await record(index, .sent)
        }
    }

    var messages: [MailMessage] { sent.withLockedValue { $0 } }
}
