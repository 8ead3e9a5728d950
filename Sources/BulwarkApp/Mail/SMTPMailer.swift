import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// Where and how to reach an SMTP server.
struct SMTPSettings: Sendable {
    enum Security: String, Sendable, CaseIterable { case none, starttls, tls }
    enum AuthMethod: String, Sendable { case plain, login }

    var host: String
    var port: Int
    var security: Security = .starttls
    var username: String?
    var password: String?
    var authMethod: AuthMethod?
    var heloName: String = "bulwark.local"
    var verifyCertificates = true
    /// Extra trusted roots (a private CA, or a test server's certificate).
    var trustRoots: [NIOSSLCertificate] = []
    var timeout: TimeAmount = .seconds(30)
}

/// SMTP transport on SwiftNIO: STARTTLS or implicit TLS, AUTH PLAIN/LOGIN, one connection per batch.
/// 4xx replies and broken connections are temporary (the caller retries); 5xx replies are permanent for that message.
struct SMTPMailer: Mailer {
    let settings: SMTPSettings
    let group: any EventLoopGroup
    let logger: Logger

    func send(_ messages: [MailMessage]) async -> [MailOutcome] {
        guard !messages.isEmpty else { return [] }
        var outcomes: [MailOutcome] = []
        do {
            try await withSession { session in
                for message in messages {
                    outcomes.append(try await session.deliver(message))
                }
            }
        } catch {
            logger.warning("SMTP \(settings.host):\(settings.port): \(error)")
            let reason = (error as? SMTPError)?.description ?? "connection failed: \(error)"
            // Messages already accepted stay sent; the rest are retried later.
            while outcomes.count < messages.count {
                if case let .permanent(text) = error as? SMTPError { outcomes.append(.permanentFailure(text)) }
                else { outcomes.append(.temporaryFailure(reason)) }
            }
        }
        return outcomes
    }

    private func tlsHandler() throws -> NIOSSLClientHandler {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if !settings.verifyCertificates { configuration.certificateVerification = .none }
        if !settings.trustRoots.isEmpty {
            configuration.additionalTrustRoots = [.certificates(settings.trustRoots)]
        }
        let context = try NIOSSLContext(configuration: configuration)
        let isIPAddress = settings.host.allSatisfy { $0.isNumber || $0 == "." || $0 == ":" }
        return try NIOSSLClientHandler(context: context, serverHostname: isIPAddress ? nil : settings.host)
    }

    private func withSession(_ body: (SMTPSession) async throws -> Void) async throws {
        let settings = self.settings
        let implicitTLS = settings.security == .tls
        let channel = try await ClientBootstrap(group: group)
            .connectTimeout(settings.timeout)
            .connect(host: settings.host, port: settings.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: settings.timeout))
                    try channel.pipeline.syncOperations.addHandler(CloseOnIdleHandler())
                    if implicitTLS { try channel.pipeline.syncOperations.addHandler(try tlsHandler(), position: .first) }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        try await channel.executeThenClose { inbound, outbound in
            let session = SMTPSession(reader: SMTPReplyReader(inbound.makeAsyncIterator()), writer: outbound)
            try await session.expect(try await session.readReply(), 220)
            var extensions = try await session.hello(settings.heloName)
            if settings.security == .starttls {
                guard extensions.contains(where: { $0.uppercased().hasPrefix("STARTTLS") }) else {
                    throw SMTPError.temporary("the server does not offer STARTTLS")
                }
                try await session.expect(try await session.command("STARTTLS"), 220)
                try await channel.channel.pipeline.addHandler(try tlsHandler(), position: .first)
                extensions = try await session.hello(settings.heloName)
            }
            if let username = settings.username, let password = settings.password {
                try await session.authenticate(username: username, password: password, preferred: settings.authMethod,
                                               extensions: extensions)
            }
            try await body(session)
            _ = try? await session.command("QUIT")
        }
    }
}

enum SMTPError: Error, CustomStringConvertible {
    case temporary(String)
    case permanent(String)

    var description: String {
        switch self {
        case let .temporary(text), let .permanent(text): text
        }
    }
}

struct SMTPReply: Sendable {
    let code: Int
    let lines: [String]
    var text: String { "\(code) \(lines.joined(separator: " / "))" }
}

/// Closes the connection when the server stays silent past the read timeout, so a hung server cannot hang a job.
private final class CloseOnIdleHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) }
        else { context.fireUserInboundEventTriggered(event) }
    }
}
