@testable import BulwarkApp
import Crypto
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
            #expect(updated["actor_id"].string == tenant.admin.id!.wire)
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
            expectError(invalid, .badRequest, "VALIDATION_ERROR")
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
            expectError(invalid, .badRequest, "VALIDATION_ERROR")
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

    /// Five custom entries in one client's chain (plus the chain's registration in the system chain).
    private func chainOfFive(_ app: Application) async throws -> TestTenant {
        let tenant = try await Factory.tenant(app)
        for index in 0..<5 {
            let response = try await app.send(.POST, "/api/v1/audit-logs", token: tenant.token, json: ["action": "step.n\(index)"])
            #expect(response.status == .created)
        }
        return tenant
    }

    private func verify(_ app: Application) async throws -> AuditVerifier.Result {
        try await AuditVerifier(db: app.db).verify()
    }

    @Test func verifyFindsTheFirstBrokenLink() async throws {
        try await withBulwark { app in
            _ = try await chainOfFive(app)
            let intact = try await verify(app)
            #expect(intact.broken == nil)
            #expect(intact.checked == 6)

            try await app.db.sql.raw("UPDATE audit_entries SET action = 'custom.step.forged' WHERE action = 'custom.step.n2'").run()
            let tampered = try await verify(app)
            #expect(tampered.broken?.seq == 3)
            #expect(tampered.broken?.reason.contains("altered") == true)
        }
    }

    @Test func removingTheNewestEntriesIsDetected() async throws {
        try await withBulwark { app in
            let tenant = try await chainOfFive(app)
            try await app.db.sql.raw("DELETE FROM audit_entries WHERE client_id = \(bind: tenant.client.id!) AND seq > 3").run()
            let truncated = try await verify(app)
            #expect(truncated.broken?.chainKey == "client:\(tenant.client.id!)")
            #expect(truncated.broken?.reason.contains("removed") == true)
        }
    }

    @Test func rewritingAChainAndItsHeadWithoutTheKeyIsDetected() async throws {
        try await withBulwark { app in
            let tenant = try await chainOfFive(app)
            let chainKey = "client:\(tenant.client.id!)"
            // Someone with the database only: drop the last two entries and point the head at the third, whose hash is
            // right there in the table. Without the key the head's MAC cannot follow.
            try await app.db.sql.raw("DELETE FROM audit_entries WHERE chain_key = \(bind: chainKey) AND seq > 3").run()
            try await app.db.sql.raw("""
                UPDATE audit_chain_heads SET seq = 3, hash = (SELECT hash FROM audit_entries WHERE chain_key = \(bind: chainKey) AND seq = 3)
                WHERE chain_key = \(bind: chainKey)
                """).run()
            let result = try await verify(app)
            #expect(result.broken?.chainKey == chainKey)
            #expect(result.broken?.reason.contains("not authentic") == true)
            // And nothing is appended on top of a head that is not authentic: the change fails loudly instead.
            let refused = try await app.send(.POST, "/api/v1/audit-logs", token: tenant.token, json: ["action": "after.tampering"])
            expectError(refused, .internalServerError, "INTERNAL_ERROR")
        }
    }

    @Test func deletingAWholeChainIsDetected() async throws {
        try await withBulwark { app in
            let tenant = try await chainOfFive(app)
            let chainKey = "client:\(tenant.client.id!)"
            try await app.db.sql.raw("DELETE FROM audit_entries WHERE chain_key = \(bind: chainKey)").run()
            try await app.db.sql.raw("DELETE FROM audit_chain_heads WHERE chain_key = \(bind: chainKey)").run()
            let result = try await verify(app)
            #expect(result.broken?.chainKey == chainKey)
            #expect(result.broken?.reason.contains("deleted") == true)
        }
    }

    @Test func chainsWrittenBeforeHeadsWereSealedStillVerify() async throws {
        try await withBulwark { app in
            let tenant = try await chainOfFive(app)
            // Make the database look as it did before the upgrade: no MACs, no registrations in the system chain.
            try await app.db.sql.raw("DELETE FROM audit_entries WHERE chain_key = 'system'").run()
            try await app.db.sql.raw("DELETE FROM audit_chain_heads WHERE chain_key = 'system'").run()
            try await app.db.sql.raw("UPDATE audit_chain_heads SET mac = NULL").run()
            try await SealAuditChains.sealLegacyChains(on: app.db, key: app.auditSealKey)
            let result = try await verify(app)
            #expect(result.broken == nil)
            #expect(result.checked == 6)
            // Appending continues the sealed chain.
            let next = try await app.send(.POST, "/api/v1/audit-logs", token: tenant.token, json: ["action": "after.upgrade"])
            #expect(next.status == .created)
            #expect(try await verify(app).broken == nil)
        }
    }

    @Test func headsThatLostTheirMACsAfterTheUpgradeAreNotResealed() async throws {
        try await withBulwark { app in
            _ = try await chainOfFive(app)
            try await app.db.sql.raw("UPDATE audit_chain_heads SET mac = NULL").run()
            await #expect(throws: ConfigurationError.self) {
                try await SealAuditChains.sealLegacyChains(on: app.db, key: app.auditSealKey)
            }
            #expect(try await verify(app).broken != nil)
        }
    }

    @Test func anEmptiedAuditLogIsBrokenWhenTheInstallationHasPeople() async throws {
        try await withBulwark { app in
            _ = try await chainOfFive(app)
            try await app.db.sql.raw("DELETE FROM audit_entries").run()
            try await app.db.sql.raw("DELETE FROM audit_chain_heads").run()
            #expect(try await verify(app).broken?.reason.contains("missing") == true)
        }
    }

    @Test func verifyCommandNeedsTheKey() async throws {
        try await withBulwark { app in
            _ = try await chainOfFive(app)
            let otherKey = AuditSeal.derive(from: SymmetricKey(size: .bits256))
            let result = try await AuditSeal.$key.withValue(otherKey) { try await AuditVerifier(db: app.db).verify() }
            #expect(result.broken?.reason.contains("not authentic") == true)
        }
    }

    @Test func clientEntriesLiveInTheirOwnNamespace() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let forged = try await app.send(.POST, "/api/v1/audit-logs", token: tenant.token, json: ["action": "auth.login"])
            #expect(forged.status == .created)
            #expect(JSON(forged)["data"]["action"].string == "custom.auth.login")
            let logins = JSON(try await app.send(.GET, "/api/v1/audit-logs?action=auth.login", token: tenant.token))
            #expect(logins["data"].array.isEmpty)
            let erased = JSON(try await app.send(.POST, "/api/v1/audit-logs", token: tenant.token, json: ["action": "custom.user.erased"]))
            #expect(erased["data"]["action"].string == "custom.user.erased")
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
            let result = try await AuditVerifier(db: app.db).verify()
            #expect(result.broken == nil)
            #expect(result.checked == 21)
        }
    }
}
