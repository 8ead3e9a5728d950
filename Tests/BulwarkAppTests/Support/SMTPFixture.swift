@testable import BulwarkApp
import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOSSL
import X509

/// A small SMTP server on a real socket that parses what it receives: EHLO, STARTTLS, AUTH PLAIN/LOGIN, MAIL, RCPT,
/// DATA (with dot-unstuffing), RSET, QUIT. Replies to RCPT can be scripted to test 4xx/5xx handling.
final class SMTPFixture: Sendable {
    struct Received: Sendable {
        let from: String
        let to: [String]
        let data: String
        let authenticatedAs: String?
        let overTLS: Bool
    }

    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let state = NIOLockedValueBox<(messages: [Received], connections: Int, port: Int)>(([], 0, 0))
    let credentials: (user: String, password: String)?
    let tls: NIOSSLContext?
    let certificate: NIOSSLCertificate?
    /// A reply line for RCPT TO of this address instead of 250 (e.g. "451 try later", "550 no such user").
    let rcptReplies: [String: String]
    /// TLS from the first byte (SMTPS, port 465 style) instead of STARTTLS.
    let implicitTLS: Bool
    /// The first line the server sends (e.g. "554 go away" to refuse at greeting); tests may change it.
    let greetingLine: NIOLockedValueBox<String>
    var greeting: String {
        get { greetingLine.withLockedValue { $0 } }
        set { greetingLine.withLockedValue { $0 = newValue } }
    }
    /// Seconds the server waits before accepting each message's data (a slow sink).
    let dataDelay: TimeAmount
    /// Takes the first message's data, then hangs up without answering it (the outcome is unknown to the sender).
    let hangUpAfterData: Bool
    /// Answers the greeting one byte every 200 ms, forever (a tarpit that defeats a plain read timeout).
    let tarpit: Bool
    /// Advertises PIPELINING (RFC 2920) and counts the envelopes whose RCPT had arrived before MAIL was answered.
    let pipelining: Bool
    /// Answers DATA with 354 even when no recipient was accepted (RFC 2920 lets a server do so); the data is then
    /// refused at its end.
    let opensDataWithoutRecipients: Bool
    private let pipelinedCount = NIOLockedValueBox(0)
    var pipelinedEnvelopes: Int { pipelinedCount.withLockedValue { $0 } }
    private let acceptLoop = NIOLockedValueBox<(channel: (any Channel)?, task: Task<Void, Never>?)>((nil, nil))

    init(credentials: (String, String)? = nil, withTLS: Bool = false, implicitTLS: Bool = false,
         rcptReplies: [String: String] = [:], greeting: String = "220 fixture.test ESMTP ready",
         dataDelay: TimeAmount = .zero, hangUpAfterData: Bool = false, tarpit: Bool = false,
         pipelining: Bool = false, opensDataWithoutRecipients: Bool = false) throws {
        self.pipelining = pipelining
        self.opensDataWithoutRecipients = opensDataWithoutRecipients
        self.greetingLine = NIOLockedValueBox(greeting)
        self.hangUpAfterData = hangUpAfterData
        self.tarpit = tarpit
        self.dataDelay = dataDelay
        self.credentials = credentials.map { (user: $0.0, password: $0.1) }
        self.rcptReplies = rcptReplies
        self.implicitTLS = implicitTLS
        if withTLS {
            let (certificate, key) = try Self.selfSignedCertificate()
            self.certificate = certificate
            tls = try NIOSSLContext(configuration: .makeServerConfiguration(certificateChain: [.certificate(certificate)], privateKey: .privateKey(key)))
        } else {
            certificate = nil
            tls = nil
        }
    }

    var port: Int { state.withLockedValue { $0.port } }
    var messages: [Received] { state.withLockedValue { $0.messages } }
    var connections: Int { state.withLockedValue { $0.connections } }

    func start() async throws {
        let implicit = implicitTLS ? tls : nil
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .bind(host: "127.0.0.1", port: 0) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let implicit { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: implicit)) }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        state.withLockedValue { $0.port = server.channel.localAddress?.port ?? 0 }
        let loop = Task<Void, Never> {
            try? await server.executeThenClose { connections in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in connections {
                        self.state.withLockedValue { $0.connections += 1 }
                        group.addTask { try? await self.serve(connection) }
                    }
                }
            }
        }
        acceptLoop.withLockedValue { $0 = (server.channel, loop) }
    }

    /// Closes the listening socket, waits for the accept loop and every connection to end, then stops the event loops:
    /// nothing is scheduled on a loop that has shut down.
    func stop() async {
        let (channel, loop) = acceptLoop.withLockedValue { $0 }
        try? await channel?.close()
        await loop?.value
        try? await group.shutdownGracefully()
    }

    private func serve(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async throws {
        try await connection.executeThenClose { inbound, outbound in
            let reader = SMTPReplyReader(inbound.makeAsyncIterator())
            func reply(_ text: String) async throws { try await outbound.write(ByteBuffer(string: text + "\r\n")) }
            var overTLS = implicitTLS
            var user: String?
            var from = ""
            var recipients: [String] = []
            if tarpit {
                for byte in greeting.utf8 {
                    try await outbound.write(ByteBuffer(bytes: [byte]))
                    try await Task.sleep(for: .milliseconds(200))
                }
            }
            try await reply(greeting)
            while true {
                let line = try await reader.readLine()
                let upper = line.uppercased()
                if upper.hasPrefix("EHLO") || upper.hasPrefix("HELO") {
                    var lines = ["250-fixture.test", "250-AUTH PLAIN LOGIN", "250-8BITMIME"]
                    if tls != nil && !overTLS && !implicitTLS { lines.append("250-STARTTLS") }
                    if pipelining { lines.append("250-PIPELINING") }
                    lines.append("250 SMTPUTF8")
                    try await reply(lines.joined(separator: "\r\n"))
                } else if upper == "STARTTLS", let tls {
                    try await reply("220 2.0.0 Ready to start TLS")
                    try await connection.channel.pipeline.addHandler(NIOSSLServerHandler(context: tls), position: .first)
                    overTLS = true
                } else if upper.hasPrefix("AUTH PLAIN ") {
                    let decoded = Data(base64Encoded: String(line.dropFirst(11))).map { String(decoding: $0, as: UTF8.self) } ?? ""
                    let parts = decoded.split(separator: "\0", omittingEmptySubsequences: false).map(String.init)
                    user = try await check(parts.count == 3 ? parts[1] : "", parts.count == 3 ? parts[2] : "", reply: reply)
                } else if upper == "AUTH LOGIN" {
                    try await reply("334 VXNlcm5hbWU6")
                    let name = Data(base64Encoded: try await reader.readLine()).map { String(decoding: $0, as: UTF8.self) } ?? ""
                    try await reply("334 UGFzc3dvcmQ6")
                    let password = Data(base64Encoded: try await reader.readLine()).map { String(decoding: $0, as: UTF8.self) } ?? ""
                    user = try await check(name, password, reply: reply)
                } else if upper.hasPrefix("MAIL FROM:") {
                    if pipelining && reader.hasBufferedLine { pipelinedCount.withLockedValue { $0 += 1 } }
                    if credentials != nil && user == nil { try await reply("530 5.7.0 Authentication required"); continue }
                    from = Self.address(line)
                    recipients = []
                    try await reply("250 2.1.0 OK")
                } else if upper.hasPrefix("RCPT TO:") {
                    let address = Self.address(line)
                    if let scripted = rcptReplies[address] { try await reply(scripted); continue }
                    recipients.append(address)
                    try await reply("250 2.1.5 OK")
                } else if upper == "DATA" {
                    guard !recipients.isEmpty || opensDataWithoutRecipients else {
                        try await reply("554 5.5.1 No valid recipients")
                        continue
                    }
                    try await reply("354 End data with <CR><LF>.<CR><LF>")
                    if dataDelay > .zero { try await Task.sleep(for: .nanoseconds(dataDelay.nanoseconds)) }
                    var lines: [String] = []
                    while true {
                        let dataLine = try await reader.readLine()
                        if dataLine == "." { break }
                        lines.append(dataLine.hasPrefix("..") ? String(dataLine.dropFirst()) : dataLine)
                    }
                    if recipients.isEmpty { try await reply("554 5.5.1 No valid recipients"); continue }
                    let received = Received(from: from, to: recipients, data: lines.joined(separator: "\r\n"), authenticatedAs: user, overTLS: overTLS)
                    state.withLockedValue { $0.messages.append(received) }
                    if hangUpAfterData { return }
                    try await reply("250 2.0.0 Queued")
                } else if upper == "RSET" {
                    from = ""
                    recipients = []
                    try await reply("250 2.0.0 OK")
                } else if upper == "QUIT" {
                    try await reply("221 2.0.0 Bye")
                    return
                } else {
                    try await reply("502 5.5.2 Command not recognised")
                }
            }
        }
    }

    private func check(_ name: String, _ password: String, reply: (String) async throws -> Void) async throws -> String? {
        if let credentials, credentials.user == name, credentials.password == password {
            try await reply("235 2.7.0 Authentication successful")
            return name
        }
        try await reply("535 5.7.8 Authentication credentials invalid")
        return nil
    }

    private static func address(_ line: String) -> String {
        guard let open = line.firstIndex(of: "<"), let close = line.lastIndex(of: ">"), open < close else { return "" }
        return String(line[line.index(after: open)..<close])
    }

    /// A throwaway certificate for "localhost", made fresh for each fixture.
    static func selfSignedCertificate() throws -> (NIOSSLCertificate, NIOSSLPrivateKey) {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName("localhost") }
        let now = Date()
        let certificate = try Certificate(
            version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600), notValidAfter: now.addingTimeInterval(3600),
            issuer: name, subject: name, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: nil))
                SubjectAlternativeNames([.dnsName("localhost")])
            },
            issuerPrivateKey: .init(key))
        let pem = try certificate.serializeAsPEM().pemString
        return (try NIOSSLCertificate(bytes: Array(pem.utf8), format: .pem),
                try NIOSSLPrivateKey(bytes: Array(key.pemRepresentation.utf8), format: .pem))
    }
}
