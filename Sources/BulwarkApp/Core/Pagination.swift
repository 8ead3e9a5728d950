import Fluent
import Vapor

/// Pagination block of list responses. Keys are fixed in every family.
struct PaginationMeta: Encodable, Sendable {
    let currentPage: Int
    let perPage: Int
    let total: Int
    let lastPage: Int
    /// Present (true) when `total` is not exact: above `ListTotals.exactLimit` rows, or for a list slow to count (a filter
    /// no index serves), it is the count of a moment ago.
    let totalEstimated: Bool?
    /// Lists with keyset paging: pass it as `cursor` for the page after this one (absent on the last page).
    var nextCursor: String?

    enum CodingKeys: String, CodingKey {
        case currentPage = "current_page", perPage = "per_page", total, lastPage = "last_page", totalEstimated = "total_estimated",
             nextCursor = "next_cursor"
    }

    init(page: Int, perPage: Int, total: Int, estimated: Bool = false) {
        self.currentPage = page
        self.perPage = perPage
        self.total = total
        self.lastPage = max(1, (total + perPage - 1) / perPage)
        self.totalEstimated = estimated ? true : nil
    }
}

struct PageResult<T: Encodable>: Encodable {
    let items: [T]
    let meta: PaginationMeta
}

/// `page` (default 1, at most `maxPage`) and `per_page` (default 15, max 100) from the query string. Both are bounded
/// before any arithmetic: an unbounded page times per_page overflows, and Swift traps on overflow even in release.
struct PageParams: Sendable {
    static let defaultPerPage = 15
    static let maxPerPage = 100
    static let maxPage = 1_000_000
    let page: Int
    let perPage: Int

    var offset: Int { (page - 1) * perPage }

    init(page: Int = 1, perPage: Int = PageParams.defaultPerPage) {
        self.page = min(max(page, 1), Self.maxPage)
        self.perPage = min(max(perPage, 1), Self.maxPerPage)
    }

    init(from request: Request) throws {
        var errors = FieldErrors()
        let page = errors.integer(request.queryText("page"), field: "page", min: 1, max: Self.maxPage) ?? 1
        let perPageField = request.keyStyle == .camel ? "perPage" : "per_page"
        let rawPerPage = request.queryText(perPageField) ?? request.queryText("per_page")
        let perPage = errors.integer(rawPerPage, field: perPageField, min: 1) ?? PageParams.defaultPerPage
        try errors.throwIfAny(from: .query)
        self.init(page: page, perPage: perPage)
    }
}

extension QueryBuilder {
    /// Runs a count and one page of the query; the caller supplies the sort so pages are stable, and maps the models to
    /// DTOs. The count is exact up to `ListTotals.exactLimit` rows and estimated above (see `ListTotals`).
    func pageOfModels(_ params: PageParams) async throws -> (items: [Model], meta: PaginationMeta) {
        let total = try await ListTotals.total(of: self)
        let items = try await self.copy().range(params.offset..<(params.offset + params.perPage)).all()
        return (items, PaginationMeta(page: params.page, perPage: params.perPage, total: total.count, estimated: total.estimated))
    }

    /// A page ordered by `keyset`: after `cursor` when given (the page number is then ignored), else at the page's
    /// offset (reached through `PageAnchors` in a list too large for an exact total). The total counts the whole list,
    /// not what follows the cursor; `next_cursor` continues it.
    func pageOfModels(_ params: PageParams, keyset: Keyset<Model>, cursor: [Keyset<Model>.Value]?) async throws
        -> (items: [Model], meta: PaginationMeta) {
        let total = try await ListTotals.total(of: self)
        // One row past the page says whether another follows (a full last page gets no `next_cursor`).
        let reading = params.perPage + 1
        var items: [Model] = []
        if cursor == nil, total.estimated, let start = try await PageAnchors.start(of: params.offset, in: self, keyset: keyset) {
            // A deep page of a large list: after the nearest remembered row instead of skipping every row before it.
            let page = self.copy()
            keyset.apply(to: page, after: start.after)
            items = try await page.range(start.skip..<(start.skip + reading)).all()
        }
        if items.isEmpty {
            // By cursor or offset; also when an anchored page came back empty (an anchor whose row has gone since:
            // its time column, read back by id, then matches nothing).
            let page = self.copy()
            keyset.apply(to: page, after: cursor)
            items = try await (cursor == nil ? page.range(params.offset..<(params.offset + reading)) : page.limit(reading)).all()
        }
        let more = items.count > params.perPage
        if more { items.removeLast(items.count - params.perPage) }
        var meta = PaginationMeta(page: cursor == nil ? params.page : 1, perPage: params.perPage, total: total.count,
                                  estimated: total.estimated)
        meta.nextCursor = keyset.nextCursor(after: items, more: more)
        return (items, meta)
    }
}
