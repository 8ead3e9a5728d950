import Fluent
import Vapor

/// Pagination block of list responses. Keys are fixed in every family.
struct PaginationMeta: Encodable, Sendable {
    let currentPage: Int
    let perPage: Int
    let total: Int
    let lastPage: Int

    enum CodingKeys: String, CodingKey {
        case currentPage = "current_page", perPage = "per_page", total, lastPage = "last_page"
    }

    init(page: Int, perPage: Int, total: Int) {
        self.currentPage = page
        self.perPage = perPage
        self.total = total
        self.lastPage = max(1, (total + perPage - 1) / perPage)
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
        let page = errors.integer(request.query[String.self, at: "page"], field: "page", min: 1, max: Self.maxPage) ?? 1
        let perPageField = request.keyStyle == .camel ? "perPage" : "per_page"
        let rawPerPage = request.query[String.self, at: perPageField] ?? request.query[String.self, at: "per_page"]
        let perPage = errors.integer(rawPerPage, field: perPageField, min: 1) ?? PageParams.defaultPerPage
        try errors.throwIfAny(from: .query)
        self.init(page: page, perPage: perPage)
    }
}

extension QueryBuilder {
    /// Runs a count and one page of the query; the caller supplies the sort so pages are stable, and maps the models to DTOs.
    func pageOfModels(_ params: PageParams) async throws -> (items: [Model], meta: PaginationMeta) {
        let total = try await self.copy().count()
        let items = try await self.copy().range(params.offset..<(params.offset + params.perPage)).all()
        return (items, PaginationMeta(page: params.page, perPage: params.perPage, total: total))
    }
}
