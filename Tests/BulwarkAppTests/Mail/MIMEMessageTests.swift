@testable import BulwarkApp
import Foundation
import Testing

@Suite struct MIMEMessageTests {
    let message = MailMessage(from: MailAddress(email: "noreply@bulwark.test", name: "Bulwark Sécurité"),
                              to: [MailAddress(email: "ann@acme.test", name: "Ann Lee")],
                              subject: "Rappel : formation en retard ✅", text: "Bonjour Ann,\n.leading dot line\nMerci",
                              html: "<p>Bonjour Ann</p>", headers: ["X-Bulwark-Escalation": "learner", "Bcc": "evil@x.test"])

    @Test func rendersMultipartAlternativeWithEncodedHeaders() throws {
        let text = MIMEMessage.render(message, date: Date(timeIntervalSince1970: 1_800_000_000), domain: "bulwark.test", boundary: "B")
        #expect(text.contains("Subject: =?UTF-8?B?"))
        #expect(text.contains("From: =?UTF-8?B?"))
        #expect(text.contains("To: \"Ann Lee\" <ann@acme.test>"))
        #expect(text.contains("Date: Fri, 15 Jan 2027 08:00:00 +0000"))
        #expect(text.contains("Message-ID: <"))
        #expect(text.contains("Content-Type: multipart/alternative; boundary=\"B\""))
        #expect(text.contains("X-Bulwark-Escalation: learner"))
        #expect(!text.contains("Bcc:"), "headers that change recipients cannot be injected")
        #expect(text.components(separatedBy: "\r\n").allSatisfy { $0.count <= 998 })
        let subjectWord = try #require(text.components(separatedBy: "\r\n").first { $0.hasPrefix("Subject:") })
        let encoded = subjectWord.replacingOccurrences(of: "Subject: =?UTF-8?B?", with: "").replacingOccurrences(of: "?=", with: "")
        #expect(String(data: Data(base64Encoded: encoded) ?? Data(), encoding: .utf8)?.hasPrefix("Rappel") == true)
        #expect(text.hasSuffix("--B--\r\n"))
    }

    @Test func base64BodiesWrapAt76() {
        let lines = MIMEMessage.base64Lines(String(repeating: "é", count: 500))
        #expect(lines.dropLast().allSatisfy { $0.count == 76 })
        #expect(Data(base64Encoded: lines.joined()).map { String(decoding: $0, as: UTF8.self) } == String(repeating: "é", count: 500))
    }

    @Test func dotStuffing() {
        #expect(MIMEMessage.dotStuffed("a\r\n.b\r\n..c\r\nd") == "a\r\n..b\r\n...c\r\nd")
        #expect(MIMEMessage.dotStuffed(".first\r\nmid.dle\n.bare-lf\r\n.") == "..first\r\nmid.dle\n.bare-lf\r\n..")
        #expect(MIMEMessage.dotStuffed("é\r\n.é") == "é\r\n..é")
    }

    @Test func dateHeaderMatchesTheFormatter() {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        for seconds in [0, 951_782_400, 1_709_208_000.9, 1_796_554_966, 4_102_444_799] as [TimeInterval] {
            let date = Date(timeIntervalSince1970: seconds)
            #expect(MIMEMessage.rfc5322Date(date) == formatter.string(from: date))
        }
    }
}
