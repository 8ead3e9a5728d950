@testable import BulwarkApp
import Fluent
import SQLKit
import Testing
import Vapor
import VaporTesting

@Suite struct AuditTests {
    @Test func changesAreRecordedAndFilterable() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let created = JSON(try await app.send(.POST, "/api/v1/users", token: tenant.token, json: [
                "first_name": "A", "last_name": "B", "email": "ab@acme.test",
            ]))
            let userID = try #require(created["data"]["id"].string)
            _ = try await app.send(.PUT, "/api/v1/users/\(userID)", token: tenant.token, json: ["department": "IT"],
                                   headers: ["User-Agent": "audit-test/1.0"])
            let all = JSON(try await app.send(.GET, "/api/v1/audit-logs", token: tenant.token))
            #expect(all["data"].array.map { $0["action"].string } == ["user.updated", "user.created"])
            let updated = all["data"][0]
            #expect(updated["actor_id"].string == tenant.admin.id!.uuidString)
            #expect(updated["user_agent"].string == "audit-test/1.0")
            #expect(updated["target_id"].string == userID)
            #expect(updated["details"]["fields"][0].string == "department")
            #expect(updated["previous_hash"].string == all["data"][1]["hash"].string)

            let byAction = JSON(try await app.send(.GET, "/api/v1/audit-logs?action=user.created", token: tenant.token))
            #expect(byAction["data"].array.count == 1)
            let byPrefix = JSON(try await app.send(.GET, "/api/v1/audit-logs?action=user.*", token: tenant.token))
            #expect(byPrefix["data"].array.count == 2)
            let byTarget = JSON(try await app.send(.GET, "/api/v1/audit-logs?target=\(userID)", token: tenant.token))
            #expect(byTarget["data"].array.count == 2)
            let byActor = JSON(try await app.send(.GET, "/api/v1/audit-logs?actor=\(tenant.admin.email)", token: tenant.token))
            #expect(byActor["data"].array.count == 2)
            let future = JSON(try await app.send(.GET, "/api/v1/audit-logs?from=2999-01-01", token: tenant.token))
            #expect(future["data"].array.isEmpty)
            let invalid = try await app.send(.GET, "/api/v1/audit-logs?from=yesterday&to=2020-01-01", token: tenant.token)
            expectError(invalid, .unprocessableEntity, "VALIDATION_ERROR")
        }
    }

    @Test func customEntries() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let created = try await app.send(.POST, "/api/v1/audit-logs", token: tenant.token, json: [
                "action": "training.reviewed", "target_type": "module", "target_id": "m-1", "details": ["note": "ok", "n": 2],
            ])
            #expect(created.status == .created)
            #expect(JSON(created)["data"]["details"]["note"].string == "ok")
            let invalid = try await app.send(.POST, "/api/v1/audit-logs", token: tenant.token, json: ["action": "Not Valid!"])
            expectError(invalid, .unprocessableEntity, "VALIDATION_ERROR")
            expectError(try await app.send(.POST, "/api/v1/audit-logs", json: ["action": "a.b"]), .unauthorized, "UNAUTHORIZED")
            let learner = try await Factory.user(app, in: tenant)
            let forbidden = try await app.send(.POST, "/api/v1/audit-logs", token: try await Factory.token(app, for: learner),
                                               json: ["action": "a.b"])
            expectError(forbidden, .forbidden, "FORBIDDEN")
        }
    }

    @Test func anotherTenantNeverSeesTheEntries() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            _ = try await app.send(.POST, "/api/v1/audit-logs", token: tenant.token, json: ["action": "secret.thing"])
            let other = try await Factory.tenant(app, name: "Other")
            let seen = JSON(try await app.send(.GET, "/api/v1/audit-logs?action=secret.thing", token: other.token))
            #expect(seen["data"].array.isEmpty)
        }
    }

    @Test func verifyFindsTheFirstBrokenLink() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            for index in 0..<5 {
                _ = try await app.send(.POST, "/api/v1/audit-logs", token: tenant.token, json: ["action": "step.n\(index)"])
            }
            let service = AuditService(db: app.db, now: Date())
            let intact = try await service.verify()
            #expect(intact.broken == nil)
            #expect(intact.checked == 5)

            try await app.db.sql.raw("UPDATE audit_entries SET action = 'step.forged' WHERE action = 'step.n2'").run()
            let tampered = try await service.verify()
            #expect(tampered.broken?.seq == 3)
            #expect(tampered.broken?.reason.contains("altered") == true)
        }
    }

    @Test func concurrentAppendsKeepOneUnbrokenChain() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for index in 0..<20 {
                    group.addTask {
                        let response = try await app.send(.POST, "/api/v1/audit-logs", token: tenant.token, json: ["action": "burst.n\(index)"])
                        #expect(response.status == .created)
                    }
                }
                try await group.waitForAll()
            }
            let result = try await AuditService(db: app.db, now: Date()).verify()
            #expect(result.broken == nil)
            #expect(result.checked == 20)
        }
    }
}
