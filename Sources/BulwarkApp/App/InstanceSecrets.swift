import Fluent
import SQLKit
import Vapor

/// Secrets generated once per installation and shared through the database by every process.
enum InstanceSecrets {
    static func value(named name: String, on db: any Database) async throws -> String {
        try await db.sql.raw("""
            INSERT INTO instance_secrets (name, value) VALUES (\(bind: name), \(bind: RandomToken.make(bytes: 48)))
            ON CONFLICT (name) DO NOTHING
            """).run()
        guard let row = try await db.sql.raw("SELECT value FROM instance_secrets WHERE name = \(bind: name)").first() else {
            throw APIError.internalError
        }
        return try row.decode(column: "value", as: String.self)
    }
}

struct CreateInstanceSecrets: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema("instance_secrets")
            .field("name", .string, .identifier(auto: false))
            .field("value", .string, .required)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("instance_secrets").delete()
    }
}
