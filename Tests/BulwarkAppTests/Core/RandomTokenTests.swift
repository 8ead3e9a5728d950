@testable import BulwarkApp
import Foundation
import Testing

@Suite struct RandomTokenTests {
    /// The direct encoder writes what Foundation's does, with the URL-safe alphabet and no padding, at every length
    /// (each of the three tails), and reads back to the same bytes.
    @Test func base64URLMatchesFoundationAndReadsBack() {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
            let expected = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            let encoded = RandomToken.base64URL(bytes)
            #expect(encoded == expected, "length \(length)")
            #expect(RandomToken.bytes(base64URL: encoded) == Data(bytes), "length \(length)")
        }
        #expect(RandomToken.base64URL([0xfb, 0xff]) == "-_8")
        #expect(RandomToken.bytes(base64URL: "a.b") == nil)
        #expect(RandomToken.bytes(base64URL: "abcde") == nil, "one character past a whole group is no byte")
        #expect(RandomToken.bytes(base64URL: "-_8=") == Data([0xfb, 0xff]), "padding is allowed")
        #expect(RandomToken.bytes(base64URL: "é") == nil)
        #expect(RandomToken.make(bytes: 24).utf8.count == 32)
        #expect(RandomToken.make(bytes: 5).utf8.count == 7, "a length that is not a whole number of draws")
        #expect(Set((0..<1000).map { _ in RandomToken.make(bytes: 16) }).count == 1000)
        #expect(Set((0..<1000).map { _ in RandomToken.make(bytes: 16).suffix(8) }).count == 1000, "the last draw is random too")
    }
}
