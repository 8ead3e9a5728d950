@testable import BulwarkApp
import Testing
import Vapor
import VaporTesting

@Suite struct AuthV3Tests {
    @Test func authUserHasTheDocumentedShape() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app, adminRole: .mspAdmin)
            let data = JSON(try await app.send(.GET, "/api/v3/auth/user", token: tenant.token))["data"]
            #expect(data.keys == ["id", "name", "email", "role", "company", "permissions", "current_client_id"])
            #expect(data["role"]["name"].string == "msp_admin")
            #expect(data["role"]["display_name"].string == "MSP Administrator")
            #expect(data["company"]["subscription_status"].string == "active")
            #expect(data["permissions"].array.compactMap(\.string).contains("manage_users"))
            #expect(data["current_client_id"].string == tenant.clientID)
        }
    }

    @Test func authUserNeedsAuthentication() async throws {
        try await withBulwark { app in
            expectError(try await app.send(.GET, "/api/v3/auth/user"), .unauthorized, "UNAUTHORIZED")
            expectError(try await app.send(.GET, "/api/v3/auth/user", token: "garbage"), .unauthorized, "UNAUTHORIZED")
        }
    }

    @Test func logoutUserInvalidatesTheSession() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let response = try await app.send(.POST, "/api/v3/auth/logout-user", token: tenant.token)
            #expect(JSON(response)["success"].bool == true)
            #expect(JSON(response)["message"].string == "User logged out successfully")
            expectError(try await app.send(.GET, "/api/v3/auth/user", token: tenant.token), .unauthorized, "UNAUTHORIZED")
            expectError(try await app.send(.POST, "/api/v3/auth/logout-user"), .unauthorized, "UNAUTHORIZED")
        }
    }
}
