import FluentKit
import Foundation
import NIOConcurrencyHelpers

/// Deep offset pages of large lists. `page=4000` of a list in keyset order used to skip 60,000 index entries on every
/// request; instead, the key of every `spacing`-th row is remembered (an anchor, found once by that same skip) and a
/// deep page continues after the nearest anchor before it, skipping fewer than `spacing` rows.
///
/// Only lists whose total is estimated (above `ListTotals.exactLimit`) use anchors, and an anchor is used for at most
/// `maxAge` seconds, like such a total: rows inserted or deleted before an anchor meanwhile shift that page by as many
/// rows, the same drift an offset page has between two requests. The page itself is always a run of consecutive rows
/// in the list's order; the cursor (`next_cursor`) remains the exact way through a changing list.
enum PageAnchors {
    static let spacing = 1_000
    static let maxAge: TimeInterval = ListTotals.maxAge

    private struct Anchor {
        let values: [KeysetValue]
        let foundAt: Date
    }

    private static let anchors = NIOLockedValueBox<[String: Anchor]>([:])
    private static let maxEntries = 10_000

    /// Where the page at `offset` starts: the anchor to continue after and the rows to skip from it; nil when the
    /// page is before the first anchor or the list has fewer rows than the anchor's position (then the caller skips
    /// by offset as before).
    static func start<Model: FluentKit.Model>(of offset: Int, in builder: QueryBuilder<Model>, keyset: Keyset<Model>,
                                              spacing: Int = PageAnchors.spacing) async throws
        -> (after: [KeysetValue], skip: Int)? {
        let index = offset / spacing
        guard index > 0 else { return nil }
        let position = index * spacing
        let key = "\(builder.query)|\(keyset.order)|\(position)"
        let now = Date()
        if let anchor = anchors.withLockedValue({ $0[key] }), now.timeIntervalSince(anchor.foundAt) <= maxAge {
            return (anchor.values, offset - position)
        }
        let walk = builder.copy()
        keyset.apply(to: walk, after: nil)
        guard let row = try await walk.range((position - 1)..<position).all().first else { return nil }
        let values = keyset.columns.map { $0.value(row) }
        anchors.withLockedValue { entries in
            if entries[key] == nil, entries.count >= maxEntries { entries.removeAll(keepingCapacity: true) }
            entries[key] = Anchor(values: values, foundAt: now)
        }
        return (values, offset - position)
    }
}
