import FluentKit
import Foundation
import FluentSQL
import NIOConcurrencyHelpers
import SQLKit

/// List totals that stay cheap at a million rows. Counting a whole client on every page costs tens of milliseconds at
/// that size, so a list first counts at most `exactLimit + 1` rows (an index walk that stops early): up to the limit the
/// total is exact (a list whose fresh count is above the limit skips that walk). Above it, the total is the exact count
/// of the same query taken at most `maxAge` seconds ago, refreshed in the background when it gets older, and the
/// envelope says `"total_estimated": true`. The first time a query goes over the limit it is counted in full once.
/// A list last counted above the limit skips the bounded walk even while its count is being refreshed: at the moment
/// a count went stale, every request of a burst walked again (100 ms each for the overdue list at 200,000 people on
/// PostgreSQL, 1.5 s at p99 with sixteen at once). A list that has shrunk below the limit is exact again from the
/// refresh that sees it. A count older than five refresh ages (at least `maxStaleAge`, at most `longestTrustedAge`:
/// its refreshes failing or hanging) is no longer trusted: requests walk again and a new refresh starts.
///
/// A list whose bounded walk itself is slow twice in a row (longer than `slowWalk`: a filter no index serves, such as a
/// department, walks the whole list to count a few thousand rows) is treated the same way below the limit: its count
/// is kept, said to be an estimate, and refreshed in the background, so not every page walks the whole list again. It
/// is exact again from the refresh that finds it cheap.
///
/// A count is refreshed after `maxAge`, or later if it is expensive (`BackgroundBudget`): at a million people on SQLite
/// a count of the client's people (0.37 s) is refreshed about every three minutes, the overdue list's (1.4 s) about
/// every ten (the longest), and both say they are estimates. Counted every 30 s, they put those lists' p99 at 386 ms
/// and 1.3 s.
enum ListTotals {
    static let exactLimit = 10_000
    static let maxAge: TimeInterval = 30
    static let maxStaleAge: TimeInterval = 150
    /// Caps on both ages: a count timed while the machine was busy (waiting for a connection, for the CPU) is longer
    /// than its work, and must not leave a list's total hours old.
    static let longestRefreshAge: TimeInterval = 600
    static let longestTrustedAge: TimeInterval = 1_800
    /// `Settings.listCountSlowAfter`, set by `configure` (one value per process); off until then.
    static let slowWalkSetting = NIOLockedValueBox<TimeInterval>(.infinity)

    struct Total: Sendable {
        let count: Int
        let estimated: Bool
    }

    private struct Entry {
        var count: Int
        var countedAt: Date
        /// How long the count took, in seconds.
        var cost: TimeInterval
        /// When the running refresh started (nil: none runs).
        var refreshingSince: Date?

        var refreshAge: TimeInterval {
            min(BackgroundBudget.interval(after: cost, floor: ListTotals.maxAge), ListTotals.longestRefreshAge)
        }
        var trustedAge: TimeInterval { min(max(ListTotals.maxStaleAge, 5 * refreshAge), ListTotals.longestTrustedAge) }
    }

    /// Keyed by the query's description (its table, joins, filters and values); bounded.
    private static let cache = NIOLockedValueBox<[String: Entry]>([:])
    private static let maxEntries = 10_000

    static func total<Model: FluentKit.Model>(of builder: QueryBuilder<Model>, exactLimit: Int = ListTotals.exactLimit)
        async throws -> Total {
        var countQuery = builder.copy().query
        countQuery.fields = [.path([.id], schema: Model.schemaOrAlias)]
        countQuery.sorts = []
        countQuery.offsets = []
        countQuery.limits = []
        guard let sql = builder.database as? any SQLDatabase else {
            return Total(count: try await builder.copy().count(), estimated: false)
        }
        var bounded = countQuery
        bounded.limits = [.count(exactLimit + 1)]
        let (full, limited) = (countQuery, bounded)
        return try await total(key: "\(countQuery)", exactLimit: exactLimit,
                               bounded: { try await count(limited, on: sql) }, full: { try await count(full, on: sql) })
    }

    /// The same for a hand-written list: `bounded` counts at most `exactLimit + 1` rows, `full` counts them all; `key`
    /// names the list and everything that filters it (tenant, filters), never a moving value such as the time.
    static func total(key: String, exactLimit: Int = ListTotals.exactLimit,
                      slowWalk: TimeInterval = slowWalkSetting.withLockedValue { $0 }, now: Date = Date(),
                      bounded: () async throws -> Int,
                      full: @escaping @Sendable () async throws -> Int) async throws -> Total {
        // A list known to be large, or slow to walk, skips even the bounded walk.
        let known = cache.withLockedValue { entries -> Bool in
            guard let entry = entries[key] else { return false }
            return (entry.count > exactLimit || entry.cost > slowWalk) && now.timeIntervalSince(entry.countedAt) <= entry.trustedAge
        }
        var boundedCount = 0
        if !known {
            let walk = try await BackgroundBudget.measure(bounded)
            guard walk.value > exactLimit else {
                if slowTwice(key, walk.cost > slowWalk) { cache.withLockedValue { remember(walk, for: key, in: &$0) } }
                return Total(count: walk.value, estimated: false)
            }
            boundedCount = walk.value
        }
        let (cached, refresh) = cache.withLockedValue { entries -> (Entry?, Bool) in
            guard var entry = entries[key] else { return (nil, false) }
            guard now.timeIntervalSince(entry.countedAt) > entry.refreshAge,
                  entry.refreshingSince.map({ now.timeIntervalSince($0) > entry.trustedAge }) ?? true else { return (entry, false) }
            entry.refreshingSince = now
            entries[key] = entry
            return (entry, true)
        }
        if refresh {
            Task {
                let fresh = try? await BackgroundBudget.measure(full)
                cache.withLockedValue { entries in
                    if let fresh { remember(fresh, for: key, in: &entries) } else { entries[key]?.refreshingSince = nil }
                }
            }
        }
        if let cached { return Total(count: max(cached.count, boundedCount), estimated: true) }
        let exact = try await firstCount(key: key, full: full)
        return Total(count: exact, estimated: false)
    }

    /// The first full count of a list, shared: requests arriving together for a list nobody has counted yet wait for
    /// one count instead of each starting its own (at a million rows, one per connection of the burst).
    private static let counting = NIOLockedValueBox<[String: Task<Int, any Error>]>([:])

    private static func firstCount(key: String, full: @escaping @Sendable () async throws -> Int) async throws -> Int {
        let task = counting.withLockedValue { running in
            if let task = running[key] { return task }
            let task = Task<Int, any Error> {
                defer { _ = counting.withLockedValue { $0.removeValue(forKey: key) } }
                let exact = try await BackgroundBudget.measure(full)
                cache.withLockedValue { remember(exact, for: key, in: &$0) }
                return exact.value
            }
            running[key] = task
            return task
        }
        return try await task.value
    }

    /// Lists whose last bounded walk was slow. One slow walk may only have waited (for a connection, for the CPU of a
    /// busy machine): a small list is kept as an estimate only when two walks in a row were slow.
    private static let slowWalks = NIOLockedValueBox<Set<String>>([])

    private static func slowTwice(_ key: String, _ slow: Bool) -> Bool {
        slowWalks.withLockedValue { walks in
            guard slow else {
                if !walks.isEmpty { walks.remove(key) }
                return false
            }
            if walks.remove(key) != nil { return true }
            if walks.count >= maxEntries { walks.removeAll(keepingCapacity: true) }
            walks.insert(key)
            return false
        }
    }

    /// A fresh full count, kept within `maxEntries` lists: when full, the older half is dropped (not every list, so
    /// many lists counted once cannot keep the large ones recounting in full).
    private static func remember(_ counted: (value: Int, cost: TimeInterval), for key: String, in entries: inout [String: Entry]) {
        if entries[key] == nil, entries.count >= maxEntries {
            let cutoff = entries.values.map(\.countedAt).sorted()[entries.count / 2]
            entries = entries.filter { $0.value.countedAt > cutoff }
        }
        entries[key] = Entry(count: counted.value, countedAt: Date(), cost: counted.cost, refreshingSince: nil)
    }

    private static func count(_ query: DatabaseQuery, on sql: any SQLDatabase) async throws -> Int {
        let inner = SQLQueryConverter(delegate: CountConverterDelegate()).convert(query)
        return try await sql.raw("SELECT COUNT(*) AS n FROM (\(inner)) AS counted").first()?.decode(column: "n", as: Int.self) ?? 0
    }

    /// Counting selects no custom types or nested fields; the defaults serve.
    private struct CountConverterDelegate: SQLConverterDelegate {
        func customDataType(_ dataType: DatabaseSchema.DataType) -> (any SQLExpression)? { nil }
    }
}
