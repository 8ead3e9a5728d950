import Foundation
import Logging
import NIOConcurrencyHelpers
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
/// With an `outboundGuard` (servers a tenant chose) every connection goes only to addresses the operator's policy allows.
struct SMTPMailer: Mailer {
    let settings: SMTPSettings
    let group: any EventLoopGroup
    let logger: Logger
    var outboundGuard: OutboundGuard?

    func deliver(_ messages: [MailMessage], proceed: (Int) async throws -> MailStep,
                 record: (Int, MailOutcome) async throws -> Void) async throws {
        // Decide about the leading messages before connecting: nothing to send means no connection at all.
        var first = 0
        scan: while first < messages.count {
            switch try await proceed(first) {
            case .stop: return
            case .skip: first += 1
            case .send: break scan
            }
        }
        guard first < messages.count else { return }
        // What the caller's callbacks throw (a database error) is theirs, not the SMTP server's: passed through as is.
        func recordOutside(_ index: Int, _ outcome: MailOutcome) async throws {
            do { try await record(index, outcome) } catch { throw MailCallbackError(underlying: error) }
        }
        func proceedOutside(_ index: Int) async throws -> MailStep {
            do { return try await proceed(index) } catch { throw MailCallbackError(underlying: error) }
        }
        do {
            try await withSession { session in
                for index in first..<messages.count {
                    if index > first {
                        switch try await proceedOutside(index) {
                        case .stop: return
                        case .skip: continue
                        case .send: break
                        }
                    }
                    let outcome: MailOutcome
                    do {
                        outcome = MailOutcome(try await session.deliver(messages[index]))
                    } catch {
                        // The body left but no verdict came back: it may have been delivered. Charged as a failed
                        // attempt (bounded retries), never handed back uncounted, which could repeat it without end.
                        if session.bodyInFlight {
                            try await recordOutside(index, .temporaryFailure("no answer after the message was sent"))
                        }
                        throw error
                    }
                    try await recordOutside(index, outcome)
                }
            }
        } catch let error as MailCallbackError {
            throw error.underlying
        } catch {
            let failure = SMTPError.classify(error)
            logger.warning("SMTP \(settings.host):\(settings.port): \(failure)")
            throw failure
        }
    }

    /// Sends one message and says what failed, stage by stage (a sending profile's connection test).
    func probe(_ message: MailMessage) async -> SMTPError? {
        do {
            var refusal: SMTPError?
            try await withSession { session in refusal = try await session.deliver(message) }
            return refusal
        } catch {
            return SMTPError.classify(error)
        }
    }

    private func tlsHandler() throws -> NIOSSLClientHandler {
        var configuration = TLSConfiguration.makeClientConfiguration()
        if !settings.verifyCertificates { configuration.certificateVerification = .none }
        if !settings.trustRoots.isEmpty {
            configuration.additionalTrustRoots = [.certificates(settings.trustRoots)]
        }
        let context = try NIOSSLContext(configuration: configuration)
        let isIPAddress = IPAddress(settings.host) != nil
        return try NIOSSLClientHandler(context: context, serverHostname: isIPAddress ? nil : settings.host)
    }

    /// Connects to the vetted addresses when there is a guard, else to the name the operator configured.
    private func connect() async throws -> NIOAsyncChannel<ByteBuffer, ByteBuffer> {
        let settings = self.settings
        let implicitTLS = settings.security == .tls
        let bootstrap = ClientBootstrap(group: group).connectTimeout(settings.timeout)
        let mailer = self
        let initializer: @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<ByteBuffer, ByteBuffer>> = { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: settings.timeout))
                try channel.pipeline.syncOperations.addHandler(CloseOnIdleHandler())
                if implicitTLS { try channel.pipeline.syncOperations.addHandler(try mailer.tlsHandler(), position: .first) }
                return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
        guard let outboundGuard else {
            return try await bootstrap.connect(host: settings.host, port: settings.port, channelInitializer: initializer)
        }
        var lastError: (any Error)?
        let addresses: [SocketAddress]
        do {
            addresses = try await outboundGuard.vet(host: settings.host, port: settings.port)
        } catch let refused as OutboundRefused {
            logger.warning("Outbound connection to \(settings.host):\(settings.port) refused: \(refused.reason)")
            throw refused
        }
        for address in addresses {
            do {
                return try await bootstrap.connect(to: address, channelInitializer: initializer)
            } catch {
                lastError = error
            }
        }
        throw lastError ?? SMTPError(.connect, note: "the name did not resolve")
    }

    private func withSession(_ body: (SMTPSession) async throws -> Void) async throws {
        let settings = self.settings
        let channel = try await connect()
        // The read timeout catches silence; this catches a server that answers a byte at a time. The handshake, and
        // then each message, must finish within twice the timeout or the connection is closed.
        let deadline = ConversationDeadline(channel: channel.channel, limit: .nanoseconds(settings.timeout.nanoseconds * 2))
        defer { deadline.disarm() }
        try await channel.executeThenClose { inbound, outbound in
            let session = SMTPSession(reader: SMTPReplyReader(inbound.makeAsyncIterator()), writer: outbound,
                                      onMessage: { deadline.arm() })
            deadline.arm()
            try session.expect(try await session.readReply(), .greeting, 220)
            var extensions = try await session.hello(settings.heloName)
            if settings.security == .starttls {
                guard extensions.contains(where: { $0.uppercased().hasPrefix("STARTTLS") }) else {
                    throw SMTPError(.startTLS, note: "the server does not offer STARTTLS")
                }
                try session.expect(try await session.command("STARTTLS"), .startTLS, 220)
                try await channel.channel.pipeline.addHandler(try tlsHandler(), position: .first)
                extensions = try await session.hello(settings.heloName)
            }
            if let username = settings.username, let password = settings.password {
                try await session.authenticate(username: username, password: password, preferred: settings.authMethod,
                                               extensions: extensions)
            }
            session.pipelining = extensions.contains { $0.trimmingCharacters(in: .whitespaces).uppercased() == "PIPELINING" }
            try await body(session)
            _ = try? await session.command("QUIT")
        }
    }
}

/// Closes a connection whose current step (the handshake, or one message) outlives its limit.
private final class ConversationDeadline: Sendable {
    private let channel: any Channel
    private let limit: TimeAmount
    private let scheduled = NIOLockedValueBox<Scheduled<Void>?>(nil)

    init(channel: any Channel, limit: TimeAmount) {
        self.channel = channel
        self.limit = limit
    }

    func arm() {
        let channel = self.channel
        let next = channel.eventLoop.scheduleTask(in: limit) { channel.close(promise: nil) }
        scheduled.withLockedValue { $0?.cancel(); $0 = next }
    }

    func disarm() {
        scheduled.withLockedValue { $0?.cancel(); $0 = nil }
    }
}

/// An error thrown by a caller's callback inside a conversation.
private struct MailCallbackError: Error {
    let underlying: any Error
}

/// Closes the connection when the server stays silent past the read timeout, so a hung server cannot hang a job.
private final class CloseOnIdleHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.fireErrorCaught(SMTPError(.timeout, note: "the server stopped answering"))
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
