import Foundation
import NIOCore
import NIOSSL
import NIOPosix

/// What went wrong talking to an SMTP server, in Bulwark's own words. Only the reply code and the enhanced status code
/// (RFC 3463, e.g. 5.1.1) are kept, never the server's text: a tenant who aims a profile at some other service must not
/// be able to read what answered there.
struct SMTPError: Error, CustomStringConvertible, Equatable, Sendable {
    enum Stage: String, Sendable {
        /// The outbound policy refused the address.
        case refusedTarget
        /// Refused, unreachable, or the name did not resolve.
        case connect
        case timeout
        case tls
        case greeting
        case hello
        case startTLS
        case authentication
        case sender
        case recipient
        case message
        /// The server hung up in the middle of the conversation.
        case closed
        /// The other side does not speak SMTP.
        case protocolError
    }

    let stage: Stage
    var code: Int?
    var enhancedCode: String?
    /// Bulwark's own explanation (the policy's reason, a missing extension), never remote text.
    var note: String?

    init(_ stage: Stage, code: Int? = nil, enhancedCode: String? = nil, note: String? = nil) {
        self.stage = stage
        self.code = code
        self.enhancedCode = enhancedCode
        self.note = note
    }

    init(_ stage: Stage, reply: SMTPReply) {
        self.init(stage, code: reply.code, enhancedCode: reply.enhancedCode)
    }

    /// The stage as API answers name it (snake_case).
    var wireName: String {
        switch stage {
        case .refusedTarget: "target_refused"
        case .startTLS: "starttls"
        case .protocolError: "protocol"
        default: stage.rawValue
        }
    }

    /// A 5xx reply: retrying the same thing will not help. (A refused target is a connection problem: it pauses the
    /// profile rather than failing messages, since a name that does not resolve now may resolve later.)
    var isPermanent: Bool { (code ?? 0) >= 500 }

    /// The failure is about the connection or the account, not about one message: no message was judged.
    var concernsConnection: Bool { ![.sender, .recipient, .message].contains(stage) }

    var description: String {
        let what: String
        switch stage {
        case .refusedTarget: what = "target refused"
        case .connect: what = "could not connect"
        case .timeout: what = "timed out"
        case .tls: what = "TLS failed"
        case .greeting: what = "the server refused the connection"
        case .hello: what = "the server refused EHLO"
        case .startTLS: what = "STARTTLS failed"
        case .authentication: what = "authentication failed"
        case .sender: what = "sender rejected"
        case .recipient: what = "recipient rejected"
        case .message: what = (code ?? 0) >= 500 ? "message rejected" : "message deferred"
        case .closed: what = "the server closed the connection"
        case .protocolError: what = "the server does not speak SMTP"
        }
        let codes = [code.map(String.init), enhancedCode].compactMap { $0 }.joined(separator: " ")
        var text = codes.isEmpty ? what : "\(what) (\(codes))"
        if let note { text += ": \(note)" }
        return text
    }

    /// Classifies whatever a connection attempt or conversation threw.
    static func classify(_ error: any Error) -> SMTPError {
        switch error {
        case let error as SMTPError: return error
        case let refused as OutboundRefused: return SMTPError(.refusedTarget, note: refused.description)
        case ChannelError.connectTimeout: return SMTPError(.timeout, note: "no answer to the connection")
        case is NIOSSLError, is BoringSSLError: return SMTPError(.tls, note: "the handshake or the certificate failed")
        case let io as IOError:
            return SMTPError(.connect, note: io.errnoCode == ECONNREFUSED ? "connection refused" : "network error")
        case is NIOConnectionError: return SMTPError(.connect, note: "connection refused or unreachable")
        case is CancellationError: return SMTPError(.closed, note: "sending was interrupted")
        default: return SMTPError(.closed, note: "the connection failed")
        }
    }
}

struct SMTPReply: Sendable {
    let code: Int
    let lines: [String]

    /// The RFC 3463 status code at the start of the reply (e.g. "5.1.1"), if it has one.
    var enhancedCode: String? {
        guard let first = lines.first?.split(separator: " ").first else { return nil }
        let parts = first.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, ["2", "4", "5"].contains(parts[0]),
              parts.dropFirst().allSatisfy({ (1...3).contains($0.count) && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) })
        else { return nil }
        return String(first)
    }
}
