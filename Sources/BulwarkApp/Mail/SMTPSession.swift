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
            guard var chunk = try await iterator.next() else {
                throw SMTPError.temporary("the server closed the connection")
            }
            pending.writeBuffer(&chunk)
        }
    }

    func readReply() async throws -> SMTPReply {
        var lines: [String] = []
        while true {
            let line = try await readLine()
            guard line.count >= 3, let code = Int(line.prefix(3)) else {
                throw SMTPError.temporary("malformed reply: \(line.prefix(100))")
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

    init(reader: SMTPReplyReader, writer: NIOAsyncChannelOutboundWriter<ByteBuffer>) {
        self.reader = reader
        self.writer = writer
    }

    func readReply() async throws -> SMTPReply { try await reader.readReply() }

    func command(_ line: String) async throws -> SMTPReply {
        try await writer.write(ByteBuffer(string: line + "\r\n"))
        return try await reader.readReply()
    }

    /// Throws a temporary error for 4xx and a permanent one for 5xx unless the code is one of `expected`.
    func expect(_ reply: SMTPReply, _ expected: Int...) async throws {
        guard !expected.contains(reply.code) else { return }
        if reply.code >= 500 { throw SMTPError.permanent(reply.text) }
        throw SMTPError.temporary(reply.text)
    }

    /// EHLO, answering the extension lines.
    func hello(_ name: String) async throws -> [String] {
        let reply = try await command("EHLO \(name)")
        try await expect(reply, 250)
        return Array(reply.lines.dropFirst())
    }

    func authenticate(username: String, password: String, preferred: SMTPSettings.AuthMethod?, extensions: [String]) async throws {
        let advertised = extensions.first { $0.uppercased().hasPrefix("AUTH") }?.uppercased().split(separator: " ").dropFirst() ?? []
        let method = preferred ?? (advertised.contains("PLAIN") || advertised.isEmpty ? .plain : .login)
        switch method {
        case .plain:
            let token = Data("\0\(username)\0\(password)".utf8).base64EncodedString()
            try await expect(try await command("AUTH PLAIN \(token)"), 235)
        case .login:
            try await expect(try await command("AUTH LOGIN"), 334)
            try await expect(try await command(Data(username.utf8).base64EncodedString()), 334)
            try await expect(try await command(Data(password.utf8).base64EncodedString()), 235)
        }
    }

    /// Sends one message. A refusal of this message is its outcome; a broken conversation throws.
    func deliver(_ message: MailMessage) async throws -> MailOutcome {
        do {
            let sender = message.envelopeFrom ?? message.from.email
            try await expect(try await command("MAIL FROM:<\(sender)>"), 250)
            for recipient in message.to {
                try await expect(try await command("RCPT TO:<\(recipient.email)>"), 250, 251)
            }
            try await expect(try await command("DATA"), 354)
            let domain = sender.split(separator: "@").last.map(String.init) ?? "bulwark.local"
            let body = MIMEMessage.dotStuffed(MIMEMessage.render(message, date: Date(), domain: domain))
            try await writer.write(ByteBuffer(string: body + ".\r\n"))
            try await expect(try await reader.readReply(), 250)
            return .sent
        } catch let error as SMTPError {
            // Reset the transaction so the next message of the batch starts clean.
            _ = try await command("RSET")
            switch error {
            case let .permanent(text): return .permanentFailure(text)
            case let .temporary(text): return .temporaryFailure(text)
            }
        }
    }
}
