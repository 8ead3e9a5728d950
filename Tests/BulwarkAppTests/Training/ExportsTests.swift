@testable import BulwarkApp
import Fluent
import Testing
import Vapor
import VaporTesting

@Suite struct ExportsTests {
    @Test func trainingCompletionStreamsCSVAndJSON() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            try await Factory.user(app, in: tenant, email: "formula@acme.test", firstName: "=HYPERLINK(\"x\")", lastName: "Evil")
            let campaign = try await TrainingFactory.campaign(app, tenant: tenant, modules: [try await TrainingFactory.builtinModule(app)])
            let csv = try await app.send(.GET, "/api/v1/export/training-completion?format=csv", token: tenant.token)
            #expect(csv.status == .ok)
            #expect(csv.headers.contentType?.subType == "csv")
            let lines = csv.body.string.split(separator: "\r\n")
            #expect(lines.count == 3)
            #expect(lines[0].hasPrefix("enrollment_id,user_id,name,email"))
            #expect(csv.body.string.contains("'=HYPERLINK"), "formulas are neutralised")
            let json = JSON(try await app.send(.GET, "/api/v1/export/training-completion?format=json&campaign_id=\(campaign.id!)", token: tenant.token))
            #expect(json["success"].bool == true)
            #expect(json["data"].array.count == 2)
            #expect(json["data"][0]["module_title"].exists)
            expectError(try await app.send(.GET, "/api/v1/export/training-completion?format=xml", token: tenant.token), .badRequest, "VALIDATION_ERROR")
            expectError(try await app.send(.GET, "/api/v1/export/training-completion"), .unauthorized, "UNAUTHORIZED")
            try await expectOtherTenantGets404(app, .GET, "/api/v1/export/training-completion?campaign_id=\(campaign.id!)")
            let other = try await Factory.tenant(app, name: "Other")
            let foreign = try await app.send(.GET, "/api/v1/export/training-completion", token: other.token)
            #expect(foreign.body.string.split(separator: "\r\n").count == 1, "only the header: nothing of another tenant")
        }
    }

    @Test func exportsPageThroughLargeSets() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            for index in 0..<(ExportsController.pageSize + 5) {
                _ = try await AuditService(db: app.db, now: Date()).record(
                    AuditEvent("bulk.n\(index)", companyID: tenant.company.id, clientID: tenant.client.id), by: .system)
            }
            let csv = try await app.send(.GET, "/api/v1/export/audit-logs", token: tenant.token)
            let lines = csv.body.string.split(separator: "\r\n")
            #expect(lines.count == ExportsController.pageSize + 6)
            #expect(lines[1].contains("bulk.n0"))
            #expect(lines.last?.contains("bulk.n\(ExportsController.pageSize + 4)") == true)
            let json = JSON(try await app.send(.GET, "/api/v1/export/audit-logs?format=json&action=bulk.n7", token: tenant.token))
            #expect(json["data"].array.count == 1)
        }
    }

    @Test func exportsCountAgainstTheExportLimit() async throws {
        try await withBulwark(clock: ManualClock(), adjust: { $0.rateLimits[.export] = RateLimitRule(limit: 1, window: 60) }) { app in
            let tenant = try await Factory.tenant(app)
            #expect(try await app.send(.GET, "/api/v1/export/audit-logs", token: tenant.token).status == .ok)
            expectError(try await app.send(.GET, "/api/v1/export/audit-logs", token: tenant.token), .tooManyRequests, "RATE_LIMITED")
        }
    }
}
