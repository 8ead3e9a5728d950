@testable import BulwarkApp
import Fluent
import Testing
import Vapor
import VaporTesting

@Suite struct CompaniesV3Tests {
    @Test func superAdminSeesAllOthersTheirOwn() async throws {
        try await withBulwark { app in
            let acme = try await Factory.tenant(app, adminRole: .mspAdmin)
            let other = try await Factory.tenant(app, name: "Other")
            try await Factory.user(app, in: acme)
            let own = JSON(try await app.send(.GET, "/api/v3/companies", token: acme.token))
            #expect(own["data"].array.count == 1)
            let company = own["data"][0]
            #expect(company["id"].string == acme.companyID)
            #expect(company["client_count"].int == 1)
            #expect(company["user_count"].int == 2)
            #expect(company.keys.isSuperset(of: ["id", "name", "email", "subscription_status", "subscription_package",
                                                 "client_count", "user_count", "created_at", "subscription_cycle_end_date"]))
            let root = try await Factory.user(app, company: other.company, client: nil, role: .superAdmin)
            let all = JSON(try await app.send(.GET, "/api/v3/companies", token: try await Factory.token(app, for: root)))
            #expect(all["pagination"]["total"].int == 2)
            expectError(try await app.send(.GET, "/api/v3/companies"), .unauthorized, "UNAUTHORIZED")
        }
    }

    @Test func companyDetailAndIsolation() async throws {
        try await withBulwark { app in
            let acme = try await Factory.tenant(app, adminRole: .mspAdmin)
            let detail = JSON(try await app.send(.GET, "/api/v3/companies/\(acme.companyID)", token: acme.token))
            #expect(detail["data"]["name"].string == acme.company.name)
            try await expectOtherTenantGets404(app, .GET, "/api/v3/companies/\(acme.companyID)")
            expectError(try await app.send(.GET, "/api/v3/companies/nope", token: acme.token), .notFound, "NOT_FOUND")
            expectError(try await app.send(.GET, "/api/v3/companies/\(acme.companyID)"), .unauthorized, "UNAUTHORIZED")
        }
    }

    @Test func clientsListFiltersByStatusAndSearch() async throws {
        try await withBulwark { app in
            let acme = try await Factory.tenant(app, adminRole: .mspAdmin)
            let dormant = Client(companyID: acme.company.id!, name: "Dormant Dental", status: "INACTIVE")
            try await dormant.create(on: app.db)
            let path = "/api/v3/companies/\(acme.companyID)/clients"
            #expect(JSON(try await app.send(.GET, path, token: acme.token))["data"].array.count == 2)
            let inactive = JSON(try await app.send(.GET, path + "?status=INACTIVE", token: acme.token))
            #expect(inactive["data"].array.map { $0["name"].string } == ["Dormant Dental"])
            let search = JSON(try await app.send(.GET, path + "?search=dental", token: acme.token))
            #expect(search["data"].array.count == 1)
            #expect(search["data"][0].keys.isSuperset(of: ["id", "name", "status", "city", "state", "country",
                                                           "email_delivery_settings", "policy_count", "assessment_count",
                                                           "created_at"]))
            #expect(search["data"][0]["policy_count"].int == 0)
            #expect(search["data"][0]["assessment_count"].int == 0)
            #expect(search["data"][0]["city"].isNull)
            // A query parameter out of its set is a bad request in every family, with the field named.
            let maybe = try await app.send(.GET, path + "?status=MAYBE", token: acme.token)
            expectError(maybe, .badRequest, "VALIDATION_ERROR")
            #expect(JSON(maybe)["error"]["details"].keys == ["status"])
            try await expectOtherTenantGets404(app, .GET, path)
            expectError(try await app.send(.GET, path), .unauthorized, "UNAUTHORIZED")
        }
    }

    @Test func clientBoundUsersSeeOnlyTheirClient() async throws {
        try await withBulwark { app in
            let acme = try await Factory.tenant(app)
            let sibling = Client(companyID: acme.company.id!, name: "Sibling")
            try await sibling.create(on: app.db)
            let list = JSON(try await app.send(.GET, "/api/v3/companies/\(acme.companyID)/clients", token: acme.token))
            #expect(list["data"].array.map { $0["id"].string } == [acme.clientID])
        }
    }

    @Test func createClient() async throws {
        try await withBulwark { app in
            let acme = try await Factory.tenant(app, adminRole: .mspAdmin)
            let path = "/api/v3/companies/\(acme.companyID)/clients"
            let created = try await app.send(.POST, path, token: acme.token, json: [
                "name": "New Client Company", "city": "Los Angeles", "state": "CA", "country": "US",
                "email_delivery_settings": "SMTP", "industry": "Technology", "employee_count": 150,
            ])
            #expect(created.status == .created)
            let data = JSON(created)["data"]
            #expect(data["name"].string == "New Client Company")
            #expect(data["status"].string == "ACTIVE")
            #expect(data["employee_count"].int == 150)
            #expect(try await AuditEntry.query(on: app.db).filter(\.$action == "client.created").count() == 1)

            let invalid = try await app.send(.POST, path, token: acme.token, json: ["country": "USA", "employee_count": -1])
            expectError(invalid, .unprocessableEntity, "VALIDATION_ERROR")
            #expect(JSON(invalid)["error"]["details"].keys == ["name", "country", "employee_count"])
            try await expectOtherTenantGets404(app, .POST, path, json: ["name": "Intruder"])
            expectError(try await app.send(.POST, path, json: ["name": "X"]), .unauthorized, "UNAUTHORIZED")
        }
    }

    @Test func clientAdminsCannotCreateClients() async throws {
        try await withBulwark { app in
            let acme = try await Factory.tenant(app)
            let response = try await app.send(.POST, "/api/v3/companies/\(acme.companyID)/clients", token: acme.token, json: ["name": "X"])
            expectError(response, .forbidden, "FORBIDDEN")
        }
    }
}
