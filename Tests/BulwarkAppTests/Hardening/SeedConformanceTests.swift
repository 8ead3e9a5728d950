@testable import BulwarkApp
import Fluent
import Testing
import Vapor

/// Where /api/v1 (and its neighbours) departed from the seeds.
@Suite struct SeedConformanceTests {
    @Test func absentValuesArePresentAsNull() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let created = try await app.send(.POST, "/api/v1/users", token: tenant.token,
                                             json: ["first_name": "No", "last_name": "Extras", "email": "plain@acme.test"])
            let user = JSON(created)["data"]
            for field in ["position", "department", "manager_id", "last_login_at"] {
                #expect(user[field].isNull, "\(field) should be null, not missing")
            }
            let staff = try await Factory.user(app, company: tenant.company, client: nil, role: .mspUser)
            let shown = try await app.send(.GET, "/api/v4/users", token: tenant.token)
            #expect(shown.status == .ok)
            let account = JSON(try await app.send(.POST, "/api/auth/login", json: ["email": staff.email, "password": "password123"]))
            #expect(account["data"]["user"]["clientId"].isNull)
            staff.$currentClient.id = nil
            try await staff.save(on: app.db)
            let mspAdmin = try await Factory.user(app, company: tenant.company, client: nil, role: .mspAdmin)
            mspAdmin.$currentClient.id = tenant.client.id
            try await mspAdmin.save(on: app.db)
            let listed = JSON(try await app.send(.GET, "/api/v1/users?search=\(staff.lastName)", token: try await Factory.token(app, for: mspAdmin)))
            _ = listed
            let v1 = JSON(try await app.send(.GET, "/api/v1/users/\(JSON(created)["data"]["id"].string!)", token: tenant.token))["data"]
            #expect(v1["client_id"].string != nil && v1["current_client_id"].string != nil)
        }
    }

    @Test func logoutUserAcceptsPostAndGetAndRevokesTheSession() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            for method in [HTTPMethod.POST, .GET] {
                let token = try await Factory.token(app, for: tenant.admin)
                let out = try await app.send(method, "/api/v3/auth/logout-user", token: token)
                #expect(out.status == .ok)
                #expect(JSON(out)["message"].string == "User logged out successfully")
                expectError(try await app.send(.GET, "/api/v3/auth/user", token: token), .unauthorized, "UNAUTHORIZED")
            }
            expectError(try await app.send(.POST, "/api/v3/auth/logout-user"), .unauthorized, "UNAUTHORIZED")
            // A GET carried by the session cookie alone could come from any link on any site: POST only, then.
            let cookie = try await signInCookie(app, email: tenant.admin.email)
            expectError(try await app.send(.GET, "/api/v3/auth/logout-user", headers: cookie), .forbidden, "FORBIDDEN")
            #expect(try await app.send(.GET, "/api/v3/auth/user", headers: cookie).status == .ok)
        }
    }

    @Test func theOpenAPIDocumentDescribesExportsStatusesAndParameterTypes() async throws {
        try await withBulwark { app in
            let paths = JSON(try await app.send(.GET, "/api/openapi.json"))["paths"]
            for path in ["/api/v1/team/export", "/api/v1/export/training-completion", "/api/v1/export/audit-logs",
                         "/api/v1/phishing/campaigns/{id}/export"] {
                let operation = paths[path]["get"]
                #expect(!operation["requestBody"].exists, "\(path) takes no body")
                #expect(operation["responses"]["200"]["content"].keys == ["text/csv", "application/json"], "\(path)")
                #expect(operation["parameters"].array.contains { $0["name"].string == "format" }, "\(path)")
            }
            let v1Create = paths["/api/v1/users"]["post"]["responses"]
            #expect(v1Create.keys == ["201", "400", "401", "403", "404", "429", "500"])
            let v3Create = paths["/api/v3/companies/{companyId}/clients"]["post"]["responses"]
            #expect(v3Create.keys == ["201", "400", "401", "403", "404", "409", "422", "429", "500"])
            let list = paths["/api/v1/users"]["get"]["parameters"].array
            let page = try #require(list.first { $0["name"].string == "page" })
            #expect(page["schema"]["type"].string == "integer")
            #expect(page["schema"]["maximum"].int == PageParams.maxPage)
            #expect(list.first { $0["name"].string == "manager_id" }?["schema"]["format"].string == "uuid")
            let importBody = paths["/api/v1/users/import"]["post"]["requestBody"]["content"]
            #expect(importBody.keys == ["text/csv", "multipart/form-data"])
            #expect(paths["/api/v3/auth/logout-user"].keys == ["get", "post"])
        }
    }

    @Test func teamExportStreamsCSVAndJSON() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let manager = try await Factory.user(app, in: tenant, role: .manager)
            for index in 0..<3 {
                let report = try await Factory.user(app, in: tenant, email: "report\(index)@acme.test")
                report.$manager.id = manager.id
                try await report.save(on: app.db)
            }
            let token = try await Factory.token(app, for: manager)
            let csv = try await app.send(.GET, "/api/v1/team/export", token: token)
            #expect(csv.headers.contentType?.subType == "csv")
            #expect(csv.body.string.split(separator: "\r\n").count == 4)
            let json = try await app.send(.GET, "/api/v1/team/export?format=json", token: token)
            #expect(json.headers.contentType == .json)
            #expect(JSON(json)["data"].array.count == 3)
            #expect(JSON(json)["data"][0]["user"]["email"].string?.hasPrefix("report") == true)
            expectError(try await app.send(.GET, "/api/v1/team/export?format=xml", token: token), .badRequest, "VALIDATION_ERROR")
        }
    }
}
