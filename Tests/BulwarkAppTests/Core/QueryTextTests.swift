@testable import BulwarkApp
import Testing
import Vapor

/// `queryText` decodes the query string once; every parameter must read as Vapor's own per-parameter decoding reads it.
@Suite struct QueryTextTests {
    @Test(arguments: [
        "", "page=2&per_page=50", "search=Ada+Lovelace&status=active", "search=%C3%A9l%C3%A8ve%20%2B1&x=%26", "page=&per_page",
        "page=1&page=2", "ids[]=1&ids[]=2&page=3", "filter[status]=active&page=4", "a=b=c", "=x&page=5", "%zz=1&page=6",
        "page=7&&&", "cursor=eyJpZCI6MX0%3D&sort=-created_at",
    ])
    func readsWhatVaporReads(query: String) async throws {
        let app = try await Application.make(.testing)
        let path = query.isEmpty ? "/api/v1/users" : "/api/v1/users?\(query)"
        let once = Request(application: app, method: .GET, url: URI(string: path), on: app.eventLoopGroup.next())
        let each = Request(application: app, method: .GET, url: URI(string: path), on: app.eventLoopGroup.next())
        for name in ["page", "per_page", "search", "status", "x", "ids", "filter", "a", "", "cursor", "sort", "missing", "%zz"] {
            #expect(once.queryText(name) == each.query[String.self, at: name], "\(name) in \(query)")
        }
        try await app.asyncShutdown()
    }
}
