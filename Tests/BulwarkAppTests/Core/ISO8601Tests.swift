@testable import BulwarkApp
import Foundation
import Testing

@Suite struct ISO8601Tests {
    @Test(arguments: [0, 951_782_400.999, 1_800_000_000.5, 4_102_444_799, -86_400.25, 1_709_164_800])
    func writesWhatFoundationsFormatterWrites(seconds: Double) {
        let date = Date(timeIntervalSince1970: seconds)
        #expect(ISO8601.string(date) == ISO8601DateFormatter().string(from: date))
        #expect(ISO8601.parse(ISO8601.string(date)) == Date(timeIntervalSince1970: seconds.rounded(.down)))
    }
}
