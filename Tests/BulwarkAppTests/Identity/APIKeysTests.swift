@testable import BulwarkApp
import Fluent
import Testing
import Vapor
import VaporTesting

@Suite struct APIKeysTests {
    @Test func createShowsTheKeyOnceAndItAuthenticates() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let created = try await app.send(.POST, "/api/v1/api-keys", token: tenant.token, json: ["name": "CI", "role": "manager"])
            #expect(created.status == .created)
            let key = try #require(JSON(created)["data"]["key"].string)
            #expect(key.hasPrefix("bwk_"))
            let stored = try await APIKey.query(on: app.db).first()
            #expect(stored?.keyHash != key)
            #expect(stored?.keyHash == RandomToken.sha256Hex(key))

            let list = JSON(try await app.send(.GET, "/api/v1/api-keys", token: tenant.token))
            #expect(list["data"].array.count == 1)
            #expect(!list["data"][0]["key"].exists)
            #expect(list["data"][0]["prefix"].string == String(key.prefix(12)))

            let me = JSON(try await app.send(.GET, "/api/v3/auth/user", token: key))
            #expect(me["data"]["role"]["name"].string == "manager")
            #expect(try await APIKey.query(on: app.db).first()?.lastUsedAt != nil)
        }
    }

    @Test func revokedKeysStopWorking() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let created = JSON(try await app.send(.POST, "/api/v1/api-keys", token: tenant.token, json: ["name": "temp"]))
            let key = try #require(created["data"]["key"].string)
            let id = try #require(created["data"]["id"].string)
            try await expectOtherTenantGets404(app, .DELETE, "/api/v1/api-keys/\(id)")
            #expect(try await app.send(.GET, "/api/v1/users", token: key).status == .ok)
            let revoked = try await app.send(.DELETE, "/api/v1/api-keys/\(id)", token: tenant.token)
            #expect(JSON(revoked)["data"]["status"].string == "revoked")
            expectError(try await app.send(.GET, "/api/v1/users", token: key), .unauthorized, "UNAUTHORIZED")
        }
    }

    @Test func validationAndPermissions() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let invalid = try await app.send(.POST, "/api/v1/api-keys", token: tenant.token, json: ["role": "wizard", "company_wide": true])
            expectError(invalid, .badRequest, "VALIDATION_ERROR")
            #expect(JSON(invalid)["error"]["details"].keys == ["name", "role", "company_wide"])
            let above = try await app.send(.POST, "/api/v1/api-keys", token: tenant.token, json: ["name": "x", "role": "super_admin"])
            expectError(above, .forbidden, "FORBIDDEN")
            let learner = try await Factory.user(app, in: tenant)
            expectError(try await app.send(.GET, "/api/v1/api-keys", token: try await Factory.token(app, for: learner)), .forbidden, "FORBIDDEN")
            expectError(try await app.send(.GET, "/api/v1/api-keys"), .unauthorized, "UNAUTHORIZED")
        }
    }

    @Test func aKeyBoundToAClientActsOnlyOnIt() async throws {
        try await withBulwark { app in
            let msp = try await Factory.tenant(app, adminRole: .mspAdmin)
            let created = JSON(try await app.send(.POST, "/api/v1/api-keys", token: msp.token, json: ["name": "bound"]))
            let key = try #require(created["data"]["key"].string)
            let second = Client(companyID: msp.company.id!, name: "Second")
            try await second.create(on: app.db)
            var headers = HTTPHeaders()
            headers.add(name: "X-Client-Id", value: second.id!.uuidString)
            expectError(try await app.send(.GET, "/api/v1/users", token: key, headers: headers), .notFound, "NOT_FOUND")
            let clients = JSON(try await app.send(.GET, "/api/v3/companies/\(msp.companyID)/clients", token: key))
            #expect(clients["data"].array.map { $0["id"].string } == [msp.clientID])
        }
    }
}
