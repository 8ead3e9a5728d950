import Foundation
import NIOCore

/// Reads SMTP replies (possibly multi-line: "250-..." then "250 ...") from the connection.
final class SMTPReplyReader {
    private var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private var pending = ByteBuffer()

    init(_ iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator) {
        self.iterator = iterator
    }

    func readLine() async throws -> String {
        while true {
            if let index = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                let length = index - pending.readerIndex + 1
                var line = pending.readString(length: length) ?? ""
                // Trim by scalar: "\r\n" is one Character in Swift, so hasSuffix("\n") would miss it.
                while let last = line.unicodeScalars.last, last == "\n" || last == "\r" { line.unicodeScalars.removeLast() }
                return line
            }
            guard var chunk = try await iterator.next() else { throw SMTPError(.closed) }
            pending.writeBuffer(&chunk)
        }
    }

    /// A whole line has already arrived and waits to be read (a pipelining client sent it without waiting).
    var hasBufferedLine: Bool { pending.readableBytesView.contains(UInt8(ascii: "\n")) }

    func readReply() async throws -> SMTPReply {
        var lines: [String] = []
        while true {
            let line = try await readLine()
            guard line.count >= 3, let code = Int(line.prefix(3)), (200...599).contains(code) else {
                throw SMTPError(.protocolError)
            }
            lines.append(String(line.dropFirst(4)))
            if line.count == 3 || line[line.index(line.startIndex, offsetBy: 3)] == " " {
                return SMTPReply(code: code, lines: lines)
            }
        }
    }
}

/// One SMTP conversation: greeting, EHLO, AUTH, then any number of messages.
final class SMTPSession {
    private let reader: SMTPReplyReader
    private let writer: NIOAsyncChannelOutboundWriter<ByteBuffer>
    /// Called as each message starts (the connection's per-message deadline restarts).
    private let onMessage: () -> Void

    init(reader: SMTPReplyReader, writer: NIOAsyncChannelOutboundWriter<ByteBuffer>, onMessage: @escaping () -> Void = {}) {
        self.reader = reader
        self.writer = writer
        self.onMessage = onMessage
    }

    func readReply() async throws -> SMTPReply { try await reader.readReply() }

    func command(_ line: String) async throws -> SMTPReply {
        try await writer.write(ByteBuffer(string: line + "\r\n"))
        return try await reader.readReply()
    }

    /// Throws the stage's error (temporary for 4xx, permanent for 5xx) unless the code is one of `expected`.
    func expect(_ reply: SMTPReply, _ stage: SMTPError.Stage, _ expected: Int...) throws {
        guard !expected.contains(reply.code) else { return }
        throw SMTPError(stage, reply: reply)
    }

    /// EHLO, answering the extension lines.
    func hello(_ name: String) async throws -> [String] {
        let reply = try await command("EHLO \(name)")
        try expect(reply, .hello, 250)
        return Array(reply.lines.dropFirst())
    }

    func authenticate(username: String, password: String, preferred: SMTPSettings.AuthMethod?, extensions: [String]) async throws {
        let advertised = extensions.first { $0.uppercased().hasPrefix("AUTH") }?.uppercased().split(separator: " ").dropFirst() ?? []
        let method = preferred ?? (advertised.contains("PLAIN") || advertised.isEmpty ? .plain : .login)
        switch method {
        case .plain:
            let token = Data("\0\(username)\0\(password)".utf8).base64EncodedString()
            try expect(try await command("AUTH PLAIN \(token)"), .authentication, 235)
        case .login:
            try expect(try await command("AUTH LOGIN"), .authentication, 334)
            try expect(try await command(Data(username.utf8).base64EncodedString()), .authentication, 334)
            try expect(try await command(Data(password.utf8).base64EncodedString()), .authentication, 235)
        }
    }

    /// True from the moment the current message's body starts going out until its reply is read: a conversation that
    /// breaks then leaves the message's fate unknown (the server may have accepted it).
    private(set) var bodyInFlight = false

    /// The server advertised PIPELINING (RFC 2920): a message's envelope (MAIL, RCPT, DATA) goes out in one write and
    /// its replies are read after, one round trip instead of three (a local sink: 5.7 ms a message at 32 connections
    /// on a busy 2-core machine, most of it waiting for each reply in turn).
    var pipelining = false

    /// Sends one message: nil when the server accepted it, else why this message was refused (the conversation goes on).
    /// A broken conversation throws.
    func deliver(_ message: MailMessage) async throws -> SMTPError? {
        bodyInFlight = false
        onMessage()
        do {
            let sender = message.envelopeFrom ?? message.from.email
            // One recipient only: with several, a server that opens the data phase although one recipient was
            // refused would leave the client to end it, delivering an empty message to the others.
            if pipelining && message.to.count == 1 {
                try await pipelinedEnvelope(from: sender, to: message.to[0].email)
            } else {
                try expect(try await command("MAIL FROM:<\(sender)>"), .sender, 250)
                for recipient in message.to {
                    try expect(try await command("RCPT TO:<\(recipient.email)>"), .recipient, 250, 251)
                }
                try expect(try await command("DATA"), .message, 354)
            }
            let domain = sender.split(separator: "@").last.map(String.init) ?? "bulwark.local"
            let body = MIMEMessage.dotStuffed(MIMEMessage.render(message, date: Date(), domain: domain))
            bodyInFlight = true
            try await writer.write(ByteBuffer(string: body + ".\r\n"))
            let reply = try await reader.readReply()
            bodyInFlight = false
            try expect(reply, .message, 250)
            return nil
        } catch let error as SMTPError where !error.concernsConnection {
            // Reset the transaction so the next message of the batch starts clean.
            _ = try await command("RSET")
            return error
        }
    }

    /// MAIL, RCPT and DATA in one write; every reply is read (the server answers each, in order) before the first
    /// refusal is thrown. A server that opens the data phase although the envelope failed gets an empty data phase
    /// ("."), which with its one recipient refused delivers nothing, so the conversation stays in step. One that
    /// accepted the recipient after refusing the sender could deliver that empty message: the conversation is broken
    /// off instead.
    private func pipelinedEnvelope(from sender: String, to recipient: String) async throws {
        try await writer.write(ByteBuffer(string: "MAIL FROM:<\(sender)>\r\nRCPT TO:<\(recipient)>\r\nDATA\r\n"))
        let mail = try await reader.readReply()
        let rcpt = try await reader.readReply()
        let data = try await reader.readReply()
        let recipientAccepted = rcpt.code == 250 || rcpt.code == 251
        if data.code == 354 && !(mail.code == 250 && recipientAccepted) {
            guard !recipientAccepted else { throw SMTPError(.protocolError) }
            _ = try await command(".")
        }
        try expect(mail, .sender, 250)
        try expect(rcpt, .recipient, 250, 251)
        try expect(data, .message, 354)
    }
}
