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
        let reference = JSONEncoder()
        reference.keyEncodingStrategy = .convertToSnakeCase
        reference.dateEncodingStrategy = .iso8601
        reference.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        let ours = KeyStyle.snake.encoder
        ours.outputFormatting.insert(.sortedKeys)
        for _ in 0..<2 {  // the second time from the cache
            #expect(String(decoding: try ours.encode(Sample()), as: UTF8.self) == String(decoding: try reference.encode(Sample()), as: UTF8.self))
        }
        #expect(SnakeCaseKeys.convert("myURLProperty") == "my_url_property")
        #expect(SnakeCaseKeys.convert("currentClientId") == "current_client_id")
    }

    @Test func hexMatchesPrintf() {
        let digest = SHA256.hash(data: Data("bulwark".utf8))
        #expect(digest.hexString == digest.map { String(format: "%02x", $0) }.joined())
        #expect([UInt8]([0, 15, 16, 255]).hexString == "000f10ff")
    }

    @Test func bearerTokenReadsWhatVaporReads() {
        for value in ["Bearer abc", "bearer abc", "BEARER abc", "Bearer  abc", "Bearer", "Bearer ", "Basic abc", "Bearer a b", "Bearerabc", "  Bearer abc  ", "Bearer abc ", "x Bearer abc"] {
            let headers = HTTPHeaders([("Authorization", value)])
            #expect(PrincipalAuthenticator.bearerToken(headers) == headers.bearerAuthorization?.token, "\(value)")
        }
        #expect(PrincipalAuthenticator.bearerToken(HTTPHeaders()) == nil)
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
            #expect(UUID(hexText: id.uuidString) == id)
            #expect(UUID(hexText: id.uuidString.lowercased()) == id)
        }
        for bad in ["", "not-a-uuid", "00000000-0000-0000-0000-00000000000", "00000000-0000-0000-0000-0000000000000",
                    "00000000x0000-0000-0000-000000000000", "0000000g-0000-0000-0000-000000000000"] {
            #expect(UUID(hexText: bad) == nil, "\(bad)")
        }
    }
}
