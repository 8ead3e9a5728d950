@testable import BulwarkApp
import Testing
import Vapor
import VaporTesting

/// `Public/` is served for what it holds (stylesheets, scripts); other paths go straight to the routes.
@Suite struct PublicFilesTests {
    @Test func stylesheetsAndScriptsAreServedAndNothingElseIs() async throws {
        try await withBulwark { app in
            let css = try await app.send(.GET, "/css/app.css")
            #expect(css.status == .ok)
            #expect(css.headers.contentType?.subType == "css")
            #expect(css.body.string.count > 100)
            #expect(try await app.send(.GET, "/js/print.js").status == .ok)
            #expect(try await app.send(.GET, "/css/missing.css").status == .notFound)
            #expect(try await app.send(.GET, "/css/../../Package.swift").status != .ok, "nothing outside Public/")
            #expect(try await app.send(.GET, "/health").status == .ok, "routes answer as before")
        }
    }
}
