@testable import BulwarkApp
import Testing
import Vapor
import VaporTesting

@Suite struct UsersV4Tests {
    @Test func listsTheDocumentedShapeWithFilters() async throws {
        try await withBulwark { app in
            let msp = try await Factory.tenant(app, adminRole: .mspAdmin)
            try await Factory.user(app, in: msp, role: .manager)
            try await Factory.user(app, in: msp)
            let response = JSON(try await app.send(.GET, "/api/v4/users?per_page=2", token: msp.token))
            #expect(response["pagination"]["total"].int == 3)
            #expect(response["pagination"]["last_page"].int == 2)
            let first = response["data"][0]
            #expect(first.keys == ["id", "name", "email", "role", "company", "status", "created_at"])
            #expect(first["role"]["display_name"].exists)
            #expect(first["company"]["name"].string == msp.company.name)
            #expect(first["status"].string == "Active")
            let managers = JSON(try await app.send(.GET, "/api/v4/users?role=manager", token: msp.token))
            #expect(managers["data"].array.count == 1)
            let invalid = try await app.send(.GET, "/api/v4/users?role=king&company_id=zzz", token: msp.token)
            expectError(invalid, .badRequest, "VALIDATION_ERROR")
            #expect(JSON(invalid)["error"]["details"].keys == ["role", "company_id"])
        }
    }

    @Test func seesOnlyReachableUsers() async throws {
        try await withBulwark { app in
            let msp = try await Factory.tenant(app, adminRole: .mspAdmin)
            let other = try await Factory.tenant(app, name: "Other")
            let filtered = JSON(try await app.send(.GET, "/api/v4/users?company_id=\(other.companyID)", token: msp.token))
            #expect(filtered["data"].array.isEmpty)
            let all = JSON(try await app.send(.GET, "/api/v4/users?per_page=100", token: msp.token))
            #expect(!all["data"].array.contains { $0["email"].string == other.admin.email })

            let root = try await Factory.user(app, company: msp.company, client: nil, role: .superAdmin)
            let everyone = JSON(try await app.send(.GET, "/api/v4/users?per_page=100", token: try await Factory.token(app, for: root)))
            #expect(everyone["pagination"]["total"].int == 3)
            expectError(try await app.send(.GET, "/api/v4/users"), .unauthorized, "UNAUTHORIZED")
        }
    }
}
