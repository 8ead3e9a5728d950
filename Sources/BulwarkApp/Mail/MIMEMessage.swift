import Foundation

/// Renders a `MailMessage` as RFC 5322 / MIME text: multipart/alternative (text + HTML), UTF-8 headers as RFC 2047
/// encoded words, base64 bodies wrapped at 76 columns, Date and Message-ID headers. SMTP dot-stuffing is done by the
/// transport, since it belongs to the DATA phase, not the message.
enum MIMEMessage {
    static func render(_ message: MailMessage, date: Date, domain: String, boundary: String = "bulwark-" + UUID().uuidString) -> String {
        var lines: [String] = []
        let messageID = message.messageID ?? "<\(UUID().lowercasedString)@\(domain)>"
        lines.append("From: \(address(message.from))")
        lines.append("To: \(message.to.map(address).joined(separator: ", "))")
        lines.append("Subject: \(encodeHeader(message.subject))")
        lines.append("Date: \(rfc5322Date(date))")
        lines.append("Message-ID: \(messageID)")
        lines.append("MIME-Version: 1.0")
        for (name, value) in message.headers.sorted(by: { $0.key < $1.key }) where isSafeHeaderName(name) {
            lines.append("\(name): \(encodeHeader(value.replacingOccurrences(of: "\r", with: "").replacingOccurrences(of: "\n", with: " ")))")
        }
        if let html = message.html {
            lines.append("Content-Type: multipart/alternative; boundary=\"\(boundary)\"")
            lines.append("")
            lines.append("This is a multi-part message in MIME format.")
            lines.append("--\(boundary)")
            lines += part(message.text, type: "text/plain")
            lines.append("--\(boundary)")
            lines += part(html, type: "text/html")
            lines.append("--\(boundary)--")
        } else {
            lines += part(message.text, type: "text/plain")
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    private static func part(_ body: String, type: String) -> [String] {
        ["Content-Type: \(type); charset=utf-8", "Content-Transfer-Encoding: base64", ""] + base64Lines(body)
    }

    static func base64Lines(_ text: String) -> [String] {
        let encoded = Data(text.utf8).base64EncodedString()
        return stride(from: 0, to: encoded.count, by: 76).map { start in
            let from = encoded.index(encoded.startIndex, offsetBy: start)
            let to = encoded.index(from, offsetBy: min(76, encoded.count - start))
            return String(encoded[from..<to])
        }
    }

    /// RFC 2047 `=?UTF-8?B?...?=` for anything outside printable ASCII; plain text otherwise.
    static func encodeHeader(_ value: String) -> String {
        if value.unicodeScalars.allSatisfy({ $0.value >= 32 && $0.value < 127 }) { return value }
        // Encoded words are limited to 75 characters: split the UTF-8 on character boundaries.
        var words: [String] = []
        var chunk = ""
        for character in value {
            if (chunk + String(character)).utf8.count > 45 {
                words.append(chunk)
                chunk = ""
            }
            chunk.append(character)
        }
        if !chunk.isEmpty { words.append(chunk) }
        return words.map { "=?UTF-8?B?\(Data($0.utf8).base64EncodedString())?=" }.joined(separator: "\r\n ")
    }

    static func address(_ address: MailAddress) -> String {
        guard let name = address.name, !name.isEmpty else { return "<\(address.email)>" }
        let encoded = encodeHeader(name)
        let display = encoded == name ? "\"\(name.replacingOccurrences(of: "\"", with: "'"))\"" : encoded
        return "\(display) <\(address.email)>"
    }

    static func rfc5322Date(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        return formatter.string(from: date)
    }

    private static func isSafeHeaderName(_ name: String) -> Bool {
        !name.isEmpty && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
            && !["from", "to", "subject", "date", "message-id", "mime-version", "content-type", "bcc", "cc"].contains(name.lowercased())
    }

    /// SMTP transparency (RFC 5321 §4.5.2): a line starting with "." gets one more.
    static func dotStuffed(_ data: String) -> String {
        data.components(separatedBy: "\r\n").map { $0.hasPrefix(".") ? "." + $0 : $0 }.joined(separator: "\r\n")
    }
}
