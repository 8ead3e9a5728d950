@testable import BulwarkApp
import Foundation
import NIOPosix
import Testing
import Vapor
import VaporTesting

/// Resolved credentials are cached for half a second: a revocation takes effect at once on the instance that made it
/// and within the cache's lifetime on every other instance of the same database.
@Suite struct CredentialCacheTests {
    /// Runs `body` with two Bulwark instances on one database (a SQLite file, or DATABASE_URL).
    private func withTwoInstances(_ body: (Application, Application) async throws -> Void) async throws {
        let path = NSTemporaryDirectory() + "bulwark-cache-\(UUID().uuidString).sqlite"
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) } }
        func adjust(_ settings: inout Settings) {
            if TestDatabase.postgresURL == nil { settings.database = .sqliteFile(path) }
        }
        try await withBulwark(adjust: adjust) { first in
            let second = try await Application.make(.testing)
            second.threadPool = NIOThreadPool(numberOfThreads: 2)
            second.bcryptCost = 4
            var settings = testSettings()
            adjust(&settings)
            try await configure(second, settings: settings)
            do {
                try await body(first, second)
            } catch {
                try? await second.asyncShutdown()
                throw error
            }
            try await second.asyncShutdown()
        }
    }

    /// Both instances have the credential cached, then `revoke` runs on the first: refused there at once, and on the
    /// second once the cache's lifetime has passed.
    private func expectRefusedEverywhere(_ first: Application, _ second: Application, credential: String,
                                         revoke: () async throws -> Void,
                                         sourceLocation: SourceLocation = #_sourceLocation) async throws {
        for app in [first, second, first, second] {
            #expect(try await app.send(.GET, "/api/v1/users", token: credential).status == .ok, sourceLocation: sourceLocation)
        }
        try await revoke()
        expectError(try await first.send(.GET, "/api/v1/users", token: credential), .unauthorized, "UNAUTHORIZED",
                    sourceLocation: sourceLocation)
        try await Task.sleep(for: .milliseconds(700))
        expectError(try await second.send(.GET, "/api/v1/users", token: credential), .unauthorized, "UNAUTHORIZED",
                    sourceLocation: sourceLocation)
    }

    @Test func aLogoutIsRefusedOnEveryInstanceWithinASecond() async throws {
        try await withTwoInstances { first, second in
            let tenant = try await Factory.tenant(first)
            let token = try await Factory.token(first, for: tenant.admin)
            try await expectRefusedEverywhere(first, second, credential: token) {
                let status = try await first.send(.POST, "/api/auth/logout", token: token).status
                #expect(status == .ok)
            }
            // The tenant's other session is untouched.
            #expect(try await second.send(.GET, "/api/v1/users", token: tenant.token).status == .ok)
        }
    }

    @Test func aRevokedKeyIsRefusedOnEveryInstanceWithinASecond() async throws {
        try await withTwoInstances { first, second in
            let tenant = try await Factory.tenant(first)
            let created = JSON(try await first.send(.POST, "/api/v1/api-keys", token: tenant.token, json: ["name": "ci"]))
            let key = try #require(created["data"]["key"].string)
            let id = try #require(created["data"]["id"].string)
            try await expectRefusedEverywhere(first, second, credential: key) {
                let status = try await first.send(.DELETE, "/api/v1/api-keys/\(id)", token: tenant.token).status
                #expect(status == .ok)
            }
        }
    }

    @Test func aDeactivatedPersonIsRefusedOnEveryInstanceWithinASecond() async throws {
        try await withTwoInstances { first, second in
            let tenant = try await Factory.tenant(first)
            let manager = try await Factory.user(first, in: tenant, role: .manager)
            let token = try await Factory.token(first, for: manager)
            try await expectRefusedEverywhere(first, second, credential: token) {
                let paused = try await first.send(.PUT, "/api/v1/users/\(manager.id!.wire)", token: tenant.token,
                                                  json: ["status": "inactive"])
                #expect(paused.status == .ok)
            }
        }
    }

    @Test func aDatabaseThatCannotBeReachedAnswers503NotUnauthorized() async throws {
        try await withBulwark { app in
            let response = ErrorBody.response(for: ConnectionPoolTimeoutError.connectionRequestTimeout,
                                              on: Request(application: app, on: app.eventLoopGroup.next()))
            #expect(response.status == .serviceUnavailable)
            #expect(response.headers.first(name: "Retry-After") == "5")
        }
    }
}
