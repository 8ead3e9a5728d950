@testable import BulwarkApp
import NIOConcurrencyHelpers
import Testing

/// Lookups asked for at once share queries; each caller gets its own key's answer, or the query's error.
@Suite struct CoalescingLookupTests {
    struct Away: Error {}

    @Test func concurrentLookupsShareQueriesAndEachGetsItsOwnAnswer() async throws {
        let queries = NIOLockedValueBox<[[Int]]>([])
        let lookup = CoalescingLookup<Int, String>(maxKeys: 50) { keys in
            queries.withLockedValue { $0.append(keys) }
            try await Task.sleep(for: .milliseconds(5))
            return Dictionary(uniqueKeysWithValues: keys.filter { $0 % 7 != 0 }.map { ($0, "value \($0)") })
        }
        // Every key twice: both callers of a key are answered.
        let answers = try await withThrowingTaskGroup(of: (Int, String?).self) { group in
            for n in 0..<400 { group.addTask { (n % 200, try await lookup.value(for: n % 200)) } }
            return try await group.reduce(into: [(Int, String?)]()) { $0.append($1) }
        }
        #expect(answers.count == 400)
        for (key, value) in answers { #expect(value == (key % 7 == 0 ? nil : "value \(key)")) }
        let sizes = queries.withLockedValue { $0.map(\.count) }
        #expect(sizes.reduce(0, +) <= 400 && sizes.allSatisfy { $0 <= 50 })
        #expect(sizes.count < 100, "lookups made while a query runs wait for the next one, not for one each")
        // Alone, a lookup is answered at once by a query of its own.
        #expect(try await lookup.value(for: 1) == "value 1")
    }

    @Test func aKeyTheQueryCannotTakeFailsAloneNotTheLookupsThatSharedItsQuery() async throws {
        let lookup = CoalescingLookup<Int, Int> { keys in
            try await Task.sleep(for: .milliseconds(5))
            if keys.contains(13) { throw Away() }
            return Dictionary(uniqueKeysWithValues: keys.map { ($0, $0 * 2) })
        }
        let results = await withTaskGroup(of: (Int, Int?).self) { group in
            for n in 10..<20 { group.addTask { (n, try? await lookup.value(for: n)) } }
            return await group.reduce(into: [Int: Int?]()) { $0[$1.0] = $1.1 }
        }
        #expect(results.count == 10)
        for (key, value) in results { #expect(value == (key == 13 ? nil : key * 2)) }
    }

    @Test func aFailedQueryFailsTheLookupsItCarriedAndTheNextOneWorks() async throws {
        let failing = NIOLockedValueBox(true)
        let lookup = CoalescingLookup<Int, Int> { keys in
            if failing.withLockedValue({ $0 }) { throw Away() }
            return Dictionary(uniqueKeysWithValues: keys.map { ($0, $0 * 2) })
        }
        await #expect(throws: Away.self) { try await lookup.value(for: 3) }
        failing.withLockedValue { $0 = false }
        #expect(try await lookup.value(for: 3) == 6)
    }
}
