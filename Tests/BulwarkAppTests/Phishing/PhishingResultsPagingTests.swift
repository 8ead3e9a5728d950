@testable import BulwarkApp
import Fluent
import Foundation
import Testing
import Vapor
import VaporTesting

/// Issue 9: a campaign's results are listed in name order through an index, by page or by cursor.
@Suite struct PhishingResultsPagingTests {
    @Test func resultsWalkByCursorInNameOrderOnceEachAndAgreeWithPages() async throws {
        let fixture = try SMTPFixture()
        try await fixture.start()
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            // Shared last names and first names: the id decides between namesakes.
            for index in 0..<30 {
                try await Factory.user(app, in: tenant, email: "r\(index)@acme.test", firstName: ["Ann", "Bo"][index % 2],
                                       lastName: "Name\(index % 4)", department: index % 3 == 0 ? "Ops" : "Sales")
            }
            let profile = try await PhishingFactory.profile(app, tenant: tenant, fixture: fixture)
            let campaign = try await PhishingFactory.launched(app, tenant: tenant, profileID: profile,
                                                              templates: [try await PhishingFactory.builtinTemplate(app)])
            let simulations = try await PhishingFactory.simulations(app, campaign: campaign)
            #expect(simulations.count == 31)
            let expected = simulations.sorted { ($0.lastName, $0.firstName, $0.id!.uuidString.lowercased()) < ($1.lastName, $1.firstName, $1.id!.uuidString.lowercased()) }
            let path = "/api/v1/phishing/campaigns/\(campaign)/results"

            let walked = try await walkPages(app, path, token: tenant.token, field: "email")
            #expect(walked == expected.map(\.email))
            var paged: [String] = []
            for page in 1...5 {
                let json = JSON(try await app.send(.GET, "\(path)?per_page=7&page=\(page)", token: tenant.token))
                #expect(json["pagination"]["total"].int == 31)
                paged += json["data"].array.compactMap { $0["email"].string }
            }
            #expect(paged == walked)
            // A filter walks the same order, over its own rows only.
            let ops = try await walkPages(app, "\(path)?department=Ops", token: tenant.token, field: "email")
            #expect(ops == expected.filter { $0.department == "Ops" }.map(\.email))
            let pending = try await walkPages(app, "\(path)?status=pending", token: tenant.token, field: "email")
            #expect(pending == walked, "nothing was sent")

            let bad = try await app.send(.GET, "\(path)?cursor=not-a-cursor", token: tenant.token)
            expectError(bad, .badRequest, "VALIDATION_ERROR")
            #expect(JSON(bad)["error"]["details"].keys == ["cursor"])
            // A full last page has no next_cursor: one is given only when rows follow.
            #expect(JSON(try await app.send(.GET, "\(path)?per_page=31", token: tenant.token))["pagination"]["next_cursor"].exists == false)
            let thirty = JSON(try await app.send(.GET, "\(path)?per_page=30", token: tenant.token))
            let last = try #require(thirty["pagination"]["next_cursor"].string)
            let rest = JSON(try await app.send(.GET, "\(path)?per_page=30&cursor=\(last)", token: tenant.token))
            #expect(rest["data"].array.compactMap { $0["email"].string } == [expected[30].email])
            #expect(rest["pagination"]["next_cursor"].exists == false)
            // A forged cursor whose name holds a NUL (PostgreSQL refuses it in text) is the cursor's 400, not a 500.
            let decoded = try #require(RandomToken.bytes(base64URL: last))
            let forged = RandomToken.base64URL(Data(String(decoding: decoded, as: UTF8.self)
                .replacingOccurrences(of: expected[29].lastName, with: "\\u0000").utf8))
            let nul = try await app.send(.GET, "\(path)?cursor=\(forged)", token: tenant.token)
            expectError(nul, .badRequest, "VALIDATION_ERROR")
            #expect(JSON(nul)["error"]["details"].keys == ["cursor"])
            // Another tenant cannot read them, by page or by a cursor taken from this tenant's walk.
            let outsider = try await Factory.tenant(app, name: "Outsider")
            let cursor = try #require(JSON(try await app.send(.GET, "\(path)?per_page=7", token: tenant.token))["pagination"]["next_cursor"].string)
            #expect(try await app.send(.GET, "\(path)?cursor=\(cursor)", token: outsider.token).status == .notFound)
            #expect(try await PhishingFactory.simulations(app, campaign: campaign).count == 31)
        }
        await fixture.stop()
    }
}
