import Fluent

struct CreateCompanies: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(Company.schema)
            .id()
            .field("name", .string, .required)
            .field("email", .string)
            .field("subscription_status", .string, .required)
            .field("subscription_package", .string, .required)
            .field("subscription_cycle_end_date", .datetime)
            .field("created_at", .datetime)
            .field("updated_at", .datetime)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Company.schema).delete()
    }
}

struct CreateClients: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(Client.schema)
            .id()
            .field("company_id", .uuid, .required, .references(Company.schema, .id, onDelete: .cascade))
            .field("name", .string, .required)
            .field("status", .string, .required)
            .field("city", .string)
            .field("state", .string)
            .field("country", .string)
            .field("email_delivery_settings", .string)
            .field("industry", .string)
            .field("employee_count", .int)
            .field("created_at", .datetime)
            .field("updated_at", .datetime)
            .create()
        try await database.createIndex(on: Client.schema, name: "clients_company_id_idx", columns: ["company_id", "name"])
    }

    func revert(on database: any Database) async throws {
        try await database.schema(Client.schema).delete()
    }
}
