import FluentKit
import Foundation

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

    /// Each anchor's key values, by list, order and position (`ShortLivedCache`: bounded, dropped after `maxAge`).
    private static let anchors = ShortLivedCache<[KeysetValue]>(ttl: .seconds(Int64(maxAge)), capacity: 10_000)

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
        if let values = anchors.value(for: key) { return (values, offset - position) }
        let generation = anchors.generation
        let walk = builder.copy()
        keyset.apply(to: walk, after: nil)
        guard let row = try await walk.range((position - 1)..<position).all().first else { return nil }
        let values = keyset.columns.map { $0.value(row) }
        anchors.store(values, for: key, generation: generation)
        return (values, offset - position)
    }
}
