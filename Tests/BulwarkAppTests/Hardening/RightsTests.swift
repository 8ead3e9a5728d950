@testable import BulwarkApp
import Fluent
import Testing
import Vapor

/// Item 9: rights that outlive their owner, and what learners may see of the tenant tree.
@Suite struct RightsTests {
    private func key(_ app: Application, token: String, json: [String: Any]) async throws -> String {
        let created = try await app.send(.POST, "/api/v1/api-keys", token: token, json: json)
        #expect(created.status == .created)
        return try #require(JSON(created)["data"]["key"].string)
    }

    @Test func aKeyNeverDoesMoreThanItsOwnerCanNow() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let apiKey = try await key(app, token: tenant.token, json: ["name": "automation", "role": "client_admin"])
            #expect(try await app.send(.POST, "/api/v1/users", token: apiKey,
                                       json: ["first_name": "A", "last_name": "B", "email": "ab@acme.test"]).status == .created)
            // The owner becomes a manager: the key keeps only what a manager may still do.
            tenant.admin.role = .manager
            try await tenant.admin.save(on: app.db)
            #expect(try await app.send(.GET, "/api/v1/users", token: apiKey).status == .ok)
            expectError(try await app.send(.POST, "/api/v1/users", token: apiKey,
                                           json: ["first_name": "C", "last_name": "D", "email": "cd@acme.test"]), .forbidden, "FORBIDDEN")
            let me = JSON(try await app.send(.GET, "/api/v3/auth/user", token: apiKey))
            #expect(!me["data"]["permissions"].array.contains { $0.string == "manage_users" })
        }
    }

    @Test func aCompanyWideKeyShrinksToOneClientWhenItsOwnerDoes() async throws {
        try await withBulwark { app in
            let msp = try await Factory.tenant(app, adminRole: .mspAdmin)
            let second = Client(companyID: msp.company.id!, name: "Second")
            try await second.create(on: app.db)
            let apiKey = try await key(app, token: msp.token, json: ["name": "all clients", "company_wide": true])
            let headers: HTTPHeaders = ["X-Client-Id": second.id!.uuidString]
            #expect(try await app.send(.GET, "/api/v1/users", token: apiKey, headers: headers).status == .ok)
            msp.admin.role = .clientAdmin
            msp.admin.$client.id = msp.client.id
            try await msp.admin.save(on: app.db)
            expectError(try await app.send(.GET, "/api/v1/users", token: apiKey, headers: headers), .notFound, "NOT_FOUND")
            #expect(try await app.send(.GET, "/api/v1/users", token: apiKey).status == .ok)
        }
    }

    @Test func learnersCannotReadTheCompanyOrItsClients() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let learner = try await Factory.token(app, for: try await Factory.user(app, in: tenant))
            expectError(try await app.send(.GET, "/api/v3/companies/\(tenant.companyID)", token: learner), .forbidden, "FORBIDDEN")
            expectError(try await app.send(.GET, "/api/v3/companies/\(tenant.companyID)/clients", token: learner), .forbidden, "FORBIDDEN")
            #expect(try await app.send(.GET, "/api/v3/companies/\(tenant.companyID)", token: tenant.token).status == .ok)
        }
    }
}

@Suite struct DemotedOwnerTests {
    @Test func aKeyBoundToAClientItsOwnerLeftStopsWorking() async throws {
        try await withBulwark { app in
            let msp = try await Factory.tenant(app, adminRole: .mspAdmin)
            let second = Client(companyID: msp.company.id!, name: "Second")
            try await second.create(on: app.db)
            // Made while acting on the second client: bound to it.
            let created = try await app.send(.POST, "/api/v1/api-keys", token: msp.token, json: ["name": "second only"],
                                             headers: ["X-Client-Id": second.id!.uuidString])
            let key = try #require(JSON(created)["data"]["key"].string)
            #expect(try await app.send(.GET, "/api/v1/users", token: key).status == .ok)
            // The owner becomes a client administrator of the first client only.
            msp.admin.role = .clientAdmin
            msp.admin.$client.id = msp.client.id
            try await msp.admin.save(on: app.db)
            expectError(try await app.send(.GET, "/api/v1/users", token: key), .unauthorized, "UNAUTHORIZED")
        }
    }

    @Test func deletedPeopleAreNobodysUsersInCompanyCounts() async throws {
        try await withBulwark { app in
            let msp = try await Factory.tenant(app, adminRole: .mspAdmin)
            let person = try await Factory.user(app, in: msp)
            let before = JSON(try await app.send(.GET, "/api/v3/companies/\(msp.companyID)", token: msp.token))["data"]["user_count"].int
            _ = try await app.send(.DELETE, "/api/v1/users/\(person.id!)", token: msp.token)
            let after = JSON(try await app.send(.GET, "/api/v3/companies/\(msp.companyID)", token: msp.token))["data"]["user_count"].int
            #expect(after == (before ?? 0) - 1)
        }
    }
}
