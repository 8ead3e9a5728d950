import Foundation

/// Renders a `MailMessage` as RFC 5322 / MIME text: multipart/alternative (text + HTML), UTF-8 headers as RFC 2047
/// encoded words, base64 bodies wrapped at 76 columns, Date and Message-ID headers. SMTP dot-stuffing is done by the
/// transport, since it belongs to the DATA phase, not the message.
enum MIMEMessage {
    static func render(_ message: MailMessage, date: Date, domain: String, boundary: String = "bulwark-" + UUID.random().uuidString) -> String {
        var lines: [String] = []
        let messageID = message.messageID ?? "<\(UUID.random().lowercasedString)@\(domain)>"
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

    /// "Sun, 06 Dec 2026 10:42:46 +0000", from the UTC calendar fields (a `DateFormatter` per message was built
    /// through ICU each time: a twelfth of the sender's CPU).
    static func rfc5322Date(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var fields = tm()
        gmtime_r(&seconds, &fields)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(fields.tm_wday)]), \(two(fields.tm_mday)) \(months[Int(fields.tm_mon)]) \(1900 + fields.tm_year) "
            + "\(two(fields.tm_hour)):\(two(fields.tm_min)):\(two(fields.tm_sec)) +0000"
    }

    private static func isSafeHeaderName(_ name: String) -> Bool {
        !name.isEmpty && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
            && !["from", "to", "subject", "date", "message-id", "mime-version", "content-type", "bcc", "cc"].contains(name.lowercased())
    }

    /// SMTP transparency (RFC 5321 §4.5.2): a line starting with "." gets one more.
    static func dotStuffed(_ data: String) -> String {
        // Byte by byte: a line is one that starts the data or follows CRLF.
        let bytes = Array(data.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 16)
        for (index, byte) in bytes.enumerated() {
            if byte == UInt8(ascii: "."), index == 0 || (index >= 2 && bytes[index - 2] == 13 && bytes[index - 1] == 10) {
                out.append(UInt8(ascii: "."))
            }
            out.append(byte)
        }
        return String(decoding: out, as: UTF8.self)
    }
}
