@testable import BulwarkApp
import Fluent
import Foundation
import Testing
import Vapor
import VaporTesting

/// Overdue list, manager team views and the leaderboard.
@Suite struct PeopleReportsTests {
    /// A manager with two reports (one of whom manages a third person), all enrolled in a campaign that is already due.
    private func overdueTeam(_ app: Application, clock: ManualClock) async throws -> (TestTenant, User, [User]) {
        let tenant = try await Factory.tenant(app)
        let manager = try await Factory.user(app, in: tenant, role: .manager, firstName: "Mo", lastName: "Manager", department: "Ops")
        let alice = try await Factory.user(app, in: tenant, firstName: "Alice", lastName: "A", department: "Ops")
        let bob = try await Factory.user(app, in: tenant, firstName: "Bob", lastName: "B", department: "Sales")
        let carol = try await Factory.user(app, in: tenant, firstName: "Carol", lastName: "C", department: "Sales")
        alice.$manager.id = manager.id
        bob.$manager.id = manager.id
        carol.$manager.id = bob.id
        try await alice.save(on: app.db)
        try await bob.save(on: app.db)
        try await carol.save(on: app.db)
        _ = try await TrainingFactory.campaign(app, tenant: tenant, modules: [try await TrainingFactory.builtinModule(app)], dueIn: 86_400)
        clock.advance(by: 86_400 * 4)
        return (tenant, manager, [alice, bob, carol])
    }

    @Test func overdueListsPeopleWithDaysLate() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let (tenant, manager, people) = try await overdueTeam(app, clock: clock)
            let token = try await Factory.token(app, for: tenant.admin) // the clock moved past the tenant's first token
            let enrollment = try #require(try await TrainingFactory.enrollments(app, of: people[0]).first)
            enrollment.status = "completed"
            enrollment.completedAt = clock.now()
            try await enrollment.save(on: app.db)
            let all = JSON(try await app.send(.GET, "/api/v1/users/overdue", token: token))
            #expect(all["pagination"]["total"].int == 4, "admin, manager, Bob and Carol")
            #expect(all["data"][0]["items"][0]["days_overdue"].int == 3)
            #expect(all["data"][0]["items"][0]["module_title"].string != nil)
            // Each person is shown as /api/v1/users shows them (read here as plain rows, there as models).
            for entry in all["data"].array {
                let id = try #require(entry["user"]["id"].string)
                let shown = JSON(try await app.send(.GET, "/api/v1/users/\(id)", token: token))["data"]
                let listed = try #require(entry["user"].value as? [String: Any])
                let single = try #require(shown.value as? [String: Any])
                let canonical = { (object: [String: Any]) in try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) }
                #expect(try canonical(listed) == canonical(single), "\(listed) vs \(single)")
            }
            #expect(all["data"].array.contains { $0["user"]["manager_id"].string == nil })
            let sales = JSON(try await app.send(.GET, "/api/v1/users/overdue?department=Sales", token: token))
            #expect(Set(sales["data"].array.compactMap { $0["user"]["first_name"].string }) == ["Bob", "Carol"])
            let reports = JSON(try await app.send(.GET, "/api/v1/users/overdue?manager_id=\(manager.id!)", token: token))
            #expect(reports["data"].array.compactMap { $0["user"]["first_name"].string } == ["Bob"])
            let other = try await Factory.tenant(app, name: "Other")
            #expect(JSON(try await app.send(.GET, "/api/v1/users/overdue", token: other.token))["data"].array.isEmpty)
            expectError(try await app.send(.GET, "/api/v1/users/overdue?manager_id=x", token: token), .badRequest, "VALIDATION_ERROR")
            expectError(try await app.send(.GET, "/api/v1/users/overdue"), .unauthorized, "UNAUTHORIZED")
        }
    }

    @Test func managersSeeTheirTeam() async throws {
        let clock = ManualClock()
        try await withBulwark(clock: clock) { app in
            let (_, manager, _) = try await overdueTeam(app, clock: clock)
            let token = try await Factory.token(app, for: manager)
            let direct = JSON(try await app.send(.GET, "/api/v1/team", token: token))
            #expect(direct["data"].array.compactMap { $0["user"]["first_name"].string } == ["Alice", "Bob"])
            #expect(direct["data"][0]["status"].string == "non_compliant")
            #expect(direct["data"][0]["phishing"].isNull)
            let all = JSON(try await app.send(.GET, "/api/v1/team?depth=all", token: token))
            #expect(all["data"].array.compactMap { $0["user"]["first_name"].string } == ["Alice", "Bob", "Carol"])
            #expect(all["data"][2]["depth"].int == 2)
            let stats = JSON(try await app.send(.GET, "/api/v1/team/stats?depth=all", token: token))
            #expect(stats["data"]["members"].int == 3)
            #expect(stats["data"]["non_compliant"].int == 3)
            #expect(stats["data"]["overdue"].int == 3)
            let export = try await app.send(.GET, "/api/v1/team/export", token: token)
            #expect(export.headers.contentType?.subType == "csv")
            #expect(export.body.string.hasPrefix("name,email,department"))
            #expect(export.body.string.contains("Alice A"))
            expectError(try await app.send(.GET, "/api/v1/team?depth=sideways", token: token), .badRequest, "VALIDATION_ERROR")
            expectError(try await app.send(.GET, "/api/v1/team"), .unauthorized, "UNAUTHORIZED")
            let other = try await Factory.tenant(app, name: "Other")
            let outsider = try await Factory.user(app, in: other, role: .manager)
            #expect(JSON(try await app.send(.GET, "/api/v1/team", token: try await Factory.token(app, for: outsider)))["data"].array.isEmpty)
        }
    }

    @Test func leaderboardRanksPeopleAndDepartments() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let ann = try await Factory.user(app, in: tenant, firstName: "Ann", lastName: "Able", department: "Ops")
            let ben = try await Factory.user(app, in: tenant, firstName: "Ben", lastName: "Baker", department: "Sales")
            _ = try await TrainingFactory.campaign(app, tenant: tenant, modules: [try await TrainingFactory.builtinModule(app)])
            for (user, score) in [(ann, 100), (ben, 80)] {
                let enrollment = try #require(try await TrainingFactory.enrollments(app, of: user).first)
                enrollment.status = "completed"
                enrollment.bestScore = score
                enrollment.completedAt = Date()
                try await enrollment.save(on: app.db)
            }
            let people = JSON(try await app.send(.GET, "/api/v1/leaderboard", token: tenant.token))
            #expect(people["data"].array.compactMap { $0["name"].string } == ["Ann Able", "Ben Baker"])
            #expect(people["data"][0]["points"].int == 200)
            let departments = JSON(try await app.send(.GET, "/api/v1/leaderboard?by=department&period=month", token: tenant.token))
            #expect(departments["data"][0]["department"].string == "Ops")
            _ = try await app.send(.PUT, "/api/v1/leaderboard/settings", token: tenant.token, json: ["show_names": false])
            let anonymous = JSON(try await app.send(.GET, "/api/v1/leaderboard", token: try await Factory.token(app, for: ben)))
            #expect(anonymous["data"].array.compactMap { $0["name"].string } == ["A.A.", "B.B."])
            expectError(try await app.send(.GET, "/api/v1/leaderboard?period=decade", token: tenant.token), .badRequest, "VALIDATION_ERROR")
            expectError(try await app.send(.PUT, "/api/v1/leaderboard/settings", token: tenant.token, json: [:]), .badRequest, "VALIDATION_ERROR")
            expectError(try await app.send(.GET, "/api/v1/leaderboard"), .unauthorized, "UNAUTHORIZED")
            let other = try await Factory.tenant(app, name: "Other")
            #expect(JSON(try await app.send(.GET, "/api/v1/leaderboard", token: other.token))["data"].array.isEmpty)
        }
    }
}
