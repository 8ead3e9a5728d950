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

    /// What is asked of the disk: paths under a top-level directory or naming a top-level file; `.well-known` but no
    /// other hidden entry.
    @Test func onlyPathsUnderWhatPublicHoldsAreLookedUp() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("public-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        for directory in ["css", ".well-known", ".git"] {
            try FileManager.default.createDirectory(at: root.appendingPathComponent(directory), withIntermediateDirectories: true)
        }
        try Data("x".utf8).write(to: root.appendingPathComponent("robots.txt"))
        let files = PublicFilesMiddleware(publicDirectory: root.path)
        #expect(files.prefixes == ["/.well-known/", "/css/", "/robots.txt"])
        for path in ["/css/app.css", "/robots.txt", "/.well-known/security.txt"] { #expect(files.serves(path), "\(path)") }
        for path in ["/css", "/robots.txt/x", "/.git/config", "/api/v1/users", "/health", "/"] { #expect(!files.serves(path), "\(path)") }
    }
}
