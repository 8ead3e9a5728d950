@testable import BulwarkApp
import Testing
import Vapor

/// Item 2: every integer from a request is bounded before arithmetic. Swift traps on overflow (in debug builds as in
/// release), so before the fix these requests ended the test process itself.
@Suite struct BoundsTests {
    static let extremes = ["9223372036854775807", "-9223372036854775808", "99999999999999999999999", "1000001", "0", "-1", "1e9", "abc"]

    @Test func everyListRouteAnswersExtremePagesWithA400NamingTheField() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app, adminRole: .mspAdmin)
            let lists = APICatalog.operations.filter { $0.method == .GET && $0.query.contains("page") }
            #expect(lists.count >= 15)
            for operation in lists {
                let path = operation.path
                    .replacingOccurrences(of: "{companyId}", with: tenant.companyID)
                    .replacingOccurrences(of: "{id}", with: UUID().uuidString)
                for parameter in ["page", "per_page"] {
                    for value in Self.extremes {
                        let response = try await app.send(.GET, "\(path)?\(parameter)=\(value)", token: tenant.token)
                        if parameter == "per_page", let number = Int(value), number > 100 {
                            // per_page is capped at 100 as the seed documents, not refused.
                            #expect([.ok, .notFound].contains(response.status), "\(path)?\(parameter)=\(value): \(response.status)")
                            continue
                        }
                        #expect([.badRequest, .notFound].contains(response.status), "\(path)?\(parameter)=\(value): \(response.status)")
                        if response.status == .badRequest {
                            #expect(JSON(response)["error"]["details"].keys == [parameter], "\(path)?\(parameter)=\(value)")
                        }
                    }
                }
            }
            // Still alive, and the largest allowed page answers an empty page.
            let last = try await app.send(.GET, "/api/v1/users?page=\(PageParams.maxPage)&per_page=100", token: tenant.token)
            #expect(last.status == .ok)
            #expect(JSON(last)["data"].array.isEmpty)
        }
    }

    @Test func bodyIntegersOutOfRangeAreFieldErrors() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            // Numbers no integer field can hold are reported together, as fields of the wrong type are.
            let huge = try await app.send(.PUT, "/api/v1/escalation/settings", token: tenant.token,
                                          json: ["learner_after_days": 1e40, "manager_after_days": 2.5, "admin_after_days": "ten"])
            expectError(huge, .badRequest, "VALIDATION_ERROR")
            #expect(JSON(huge)["error"]["details"].keys == ["learner_after_days", "manager_after_days", "admin_after_days"])
            // Integers that fit are then checked against the field's own range.
            let large = try await app.send(.PUT, "/api/v1/escalation/settings", token: tenant.token,
                                           json: ["learner_after_days": 9_223_372_036_854_775_807, "quiet_hours_start": -9_223_372_036_854_775_807])
            expectError(large, .badRequest, "VALIDATION_ERROR")
            #expect(JSON(large)["error"]["details"].keys == ["learner_after_days", "quiet_hours_start"])
        }
    }
}
