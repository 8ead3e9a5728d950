@testable import BulwarkApp
import Crypto
import Foundation
import Testing
import Vapor

/// The fast paths of every response (key conversion, dates, hex digests, headers) write exactly what the Foundation
/// and Vapor routines they replace wrote.
@Suite struct WireEncodingTests {
    struct Sample: Encodable {
        var id = UUID(uuidString: "00000000-0000-0000-0000-0000000000AB")!
        var myURLProperty = "a/b"
        var currentClientId: String? = nil
        var createdAt = Date(timeIntervalSince1970: 1_800_000_000.75)
        var nested = ["someKey": [1.5, 2, 66.7]]
        var html = "<b>\"x\"</b>\n"
        var ABCTest = true
        var _private = 0
        var snake_already = 1
    }

    @Test func keysAndDatesMatchFoundationsEncoder() throws {
        for _ in 0..<2 {  // the second time from the cache
            #expect(try WireJSONTests.canonical(WireJSON(style: .snake).encode(Sample())) == WireJSONTests.reference(Sample(), style: .snake))
        }
        #expect(SnakeCaseKeys.convert("myURLProperty") == "my_url_property")
        #expect(SnakeCaseKeys.convert("currentClientId") == "current_client_id")
    }

    @Test func trimmingAndEmailChecksMatchTheFoundationVersions() {
        func referenceEmail(_ text: String) -> Bool {
            let parts = text.split(separator: "@", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, parts[1].contains("."), !parts[1].hasPrefix("."), !parts[1].hasSuffix("."),
                  !text.contains(where: { $0.isWhitespace }) else { return false }
            return text.count <= 254
        }
        let values = ["", " ", "a", " a", "a ", "\ta\n", "\r\n", "ada@acme.test", " ada@acme.test ", "a@b", "@b.c", "a@.b", "a@b.", "a@@b.c",
                      "a@b@c.d", "a b@c.d", "a@b.c\u{2028}", "\u{00A0}x\u{00A0}", "x\u{3000}", "\u{85}y", "é@ü.de", "\u{1F}a\u{1F}",
                      "a\u{0301}@b.c", String(repeating: "a", count: 250) + "@b.cd", String(repeating: "é", count: 200) + "@b.cd",
                      String(repeating: "a", count: 251) + "@b.cd", "x@y.z\r\n"]
        for value in values {
            #expect(FieldErrors.trimmed(value) == value.trimmingCharacters(in: .whitespacesAndNewlines), "\(value.debugDescription)")
            #expect(EmailAddress.isValid(value) == referenceEmail(value), "\(value.debugDescription)")
        }
    }

    @Test func hexMatchesPrintf() {
        let digest = SHA256.hash(data: Data("bulwark".utf8))
        #expect(digest.hexString == digest.map { String(format: "%02x", $0) }.joined())
        #expect([UInt8]([0, 15, 16, 255]).hexString == "000f10ff")
    }

    @Test func bearerTokenReadsWhatVaporReads() {
        for value in ["Bearer abc", "bearer abc", "BEARER abc", "BeArEr abc", "Bearer  abc", "Bearer", "Bearer ", "Basic abc",
                      "Bearer a b", "Bearerabc", "  Bearer abc  ", "Bearer abc ", "x Bearer abc", "Bearer1 abc", "Bearér abc",
                      "Bearer\tabc", "Bearer ä€", "Bear abc", "bearer\u{00}abc"] {
            let headers = HTTPHeaders([("Authorization", value)])
            #expect(PrincipalAuthenticator.bearerToken(headers) == headers.bearerAuthorization?.token, "\(value)")
        }
        #expect(PrincipalAuthenticator.bearerToken(HTTPHeaders()) == nil)
    }

    /// The path read from the URI's text is `URI.path`, with or without encoding, query or fragment, for URIs built
    /// as the server builds them (`URI(path:)` from the request target) and as clients write them.
    @Test func requestPathsReadFromTheTargetMatchVaporsPath() {
        for target in ["/api/v1/users", "/api/v1/users?page=2&x=%20", "/api//v1/users/", "/api/v1/users/caf%C3%A9", "/a%2Fb?q",
                       "/", "/api/v1/users#part", "/api/v1/ä", "http://example.com/api/v1/users?x=1", "/api/v1/users;x",
                       "/api/v1/users%3Bx", "//api/v1/users", "*", "/api/v1/users/../export"] {
            for uri in [URI(path: target), URI(string: target)] {
                #expect(Request.targetPath(uri) == uri.path, "\(target)")
            }
        }
    }

    /// The collapsed path (what the router matches) is the path's non-empty segments joined by one slash.
    @Test func canonicalPathsCollapseSlashes() {
        for path in ["/", "", "//", "/api/v1/users", "/api/v1/users/", "/api//v1/users", "api/v1", "///api", "/a/", "/a//"] {
            let expected = "/" + path.split(separator: "/", omittingEmptySubsequences: true).joined(separator: "/")
            #expect(RouteFamily.canonical(path) == expected, "\(path)")
        }
    }

    /// As Vapor's media type, except that the case of the type does not matter (more pages get the policy, never fewer).
    @Test func htmlIsRecognisedAsVaporsMediaTypeWould() {
        for value in ["text/html", "text/html; charset=utf-8", "TEXT/HTML", "text/htmlx", "application/json", "text/plain", "text/html;charset=utf-8"] {
            let headers = HTTPHeaders([("Content-Type", value)])
            #expect(SecurityHeadersMiddleware.isHTML(value) == (headers.contentType?.subType.lowercased() == "html" && headers.contentType?.type.lowercased() == "text"), "\(value)")
        }
    }
}

extension WireEncodingTests {
    @Test func uuidTextBothWays() {
        for _ in 0..<200 {
            let id = UUID()
            #expect(id.lowercasedString == id.uuidString.lowercased())
            #expect(id.uppercasedString == id.uuidString)
            #expect(UUID(hexText: id.uuidString) == id)
            #expect(UUID(hexText: id.uuidString.lowercased()) == id)
        }
        for bad in ["", "not-a-uuid", "00000000-0000-0000-0000-00000000000", "00000000-0000-0000-0000-0000000000000",
                    "00000000x0000-0000-0000-000000000000", "0000000g-0000-0000-0000-000000000000"] {
            #expect(UUID(hexText: bad) == nil, "\(bad)")
        }
    }

    @Test func byteOrderIsTheTextOrder() {
        let ids = (0..<300).map { _ in UUID() }
        #expect(ids.sorted(by: UUID.byteOrder).map(\.lowercasedString) == ids.map(\.lowercasedString).sorted())
        #expect(!UUID.byteOrder(ids[0], ids[0]))
    }

    @Test func randomIdsAreVersion4AndDistinct() {
        let ids = (0..<10_000).map { _ in UUID.random() }
        #expect(Set(ids).count == ids.count)
        #expect(ids.allSatisfy { $0.lowercasedString.dropFirst(14).first == "4" && "89ab".contains($0.lowercasedString.dropFirst(19).first!) })
        // Every random hex digit takes more than one value across the ids (none is left fixed by the byte handling).
        let text = ids.map { Array($0.lowercasedString) }
        for position in 0..<36 where ![8, 13, 14, 18, 19, 23].contains(position) {
            #expect(Set(text.map { $0[position] }).count > 1, "digit \(position) varies")
        }
    }

    @Test func timeOrderedIdsAreVersion7AndFollowTheClock() {
        let start = Date(timeIntervalSince1970: 1_800_000_000.123)
        let ids = (0..<100).map { UUID.timeOrdered(at: start.addingTimeInterval(Double($0) * 0.002)) }
        #expect(ids == ids.sorted(by: UUID.byteOrder), "later ids sort after earlier ones")
        #expect(Set(ids).count == ids.count)
        for id in ids {
            #expect(id.lowercasedString.dropFirst(14).first == "7", "version 7")
            #expect("89ab".contains(id.lowercasedString.dropFirst(19).first!), "RFC 9562 variant")
        }
        #expect(ids[0].lowercasedString.hasPrefix(String(1_800_000_000_123, radix: 16).leftPadded(to: 12).prefix(8)))
        // Ids of one instant differ only in their random bits: each of those hex digits takes more than one value
        // (a fixed bit would make tracking events of one millisecond collide, and `ON CONFLICT (id)` drop them).
        let sameInstant = (0..<2_000).map { _ in Array(UUID.timeOrdered(at: start).lowercasedString) }
        #expect(Set(sameInstant).count == sameInstant.count)
        for position in [15, 16, 17, 20, 21, 22] + Array(24..<36) {
            #expect(Set(sameInstant.map { $0[position] }).count > 1, "digit \(position) varies")
        }
        #expect(Set(sameInstant.map { $0[19] }).count == 4, "the variant digit keeps its two random bits")
    }

    @Test func idsMadeTogetherKeepTheirOrderAcrossThreads() async {
        // Far more ids than milliseconds pass: the counter (and borrowing the next millisecond) keeps them ordered.
        let runs = await withTaskGroup(of: [UUID].self) { group in
            for _ in 0..<2 { group.addTask { (0..<20_000).map { _ in UUID.timeOrdered() } } }
            return await group.reduce(into: []) { $0.append($1) }
        }
        for run in runs {
            #expect(zip(run, run.dropFirst()).allSatisfy { UUID.byteOrder($0, $1) }, "each caller's ids strictly increase")
        }
        let all = runs.flatMap { $0 }
        #expect(Set(all).count == 40_000)
        #expect(all.allSatisfy { $0.lowercasedString.dropFirst(14).first == "7" && "89ab".contains($0.lowercasedString.dropFirst(19).first!) })
        let made = UInt64(Date().timeIntervalSince1970 * 1000)
        let stamp = UInt64(all.map { $0.lowercasedString.replacingOccurrences(of: "-", with: "").prefix(12) }.max()!, radix: 16)!
        #expect(stamp <= made + 50, "the borrowed clock stays close to the real one")
    }
}

private extension String {
    func leftPadded(to length: Int) -> String { String(repeating: "0", count: max(0, length - count)) + self }
}
