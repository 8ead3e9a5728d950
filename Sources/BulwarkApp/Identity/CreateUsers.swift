import Fluent

struct CreateUsers: AsyncMigration {
    func prepare(on database: any Database) async throws {
        let role = try await database.enum("user_role")
            .case("super_admin").case("msp_admin").case("msp_user")
            .case("client_admin").case("manager").case("company_user")
            .create()
        try await database.schema(User.schema)
            .id()
            .field("company_id", .uuid, .required, .references(Company.schema, .id, onDelete: .cascade))
            .field("client_id", .uuid, .references(Client.schema, .id, onDelete: .setNull))
            .field("current_client_id", .uuid, .references(Client.schema, .id, onDelete: .setNull))
            .field("first_name", .string, .required)
            .field("last_name", .string, .required)
            .field("email", .string, .required)
            .field("position", .string)
            .field("department", .string)
            .field("manager_id", .uuid, .references(User.schema, .id, onDelete: .setNull))
            .field("locale", .string, .required)
            .field("status", .string, .required)
            .field("role", role, .required)
            .field("password_hash", .string)
            .field("totp_secret", .string)
            .field("totp_enabled", .bool, .required)
            .field("failed_logins", .int, .required)
            .field("locked_until", .datetime)
            .field("last_login_at", .datetime)
            .field("created_at", .datetime)
            .field("updated_at", .datetime)
            .unique(on: "email")
            .create()
        try await database.createIndex(on: User.schema, name: "users_company_id_idx", columns: ["company_id"])
        try await database.createIndex(on: User.schema, name: "users_client_id_idx", columns: ["client_id", "last_name", "first_name", "id"])
        try await database.createIndex(on: User.schema, name: "users_manager_id_idx", columns: ["manager_id"])
        try await database.createIndex(on: User.schema, name: "users_current_client_id_idx", columns: ["current_client_id"])
    }

    func revert(on database: any Database) async throws {
        try await database.schema(User.schema).delete()
        try await database.enum("user_role").delete()
    }
}
