import Foundation
import SQLKit

/// A user as the /api/v1 family shows it (snake_case on the wire).
struct UserResponse: Encodable, Sendable {
    let id: UUID
    let firstName: String
    let lastName: String
    let name: String
    let email: String
    @Nullable var position: String?
    @Nullable var department: String?
    @Nullable var managerId: UUID?
    let locale: String
    let status: String
    let role: String
    let companyId: UUID
    @Nullable var clientId: UUID?
    @Nullable var currentClientId: UUID?
    let totpEnabled: Bool
    @Nullable var lastLoginAt: Date?
    let createdAt: Date?
    let updatedAt: Date?

    init(_ user: User) {
        id = user.id!
        firstName = user.firstName
        lastName = user.lastName
        name = user.fullName
        email = user.email
        position = user.position
        department = user.department
        managerId = user.$manager.id
        locale = user.locale
        status = user.status
        role = user.role.rawValue
        companyId = user.$company.id
        clientId = user.$client.id
        currentClientId = user.$currentClient.id
        totpEnabled = user.totpEnabled
        lastLoginAt = user.lastLoginAt
        createdAt = user.createdAt
        updatedAt = user.updatedAt
    }
}

extension UserResponse {
    /// The columns `init(plain:)` reads, in its order, from the users table under the given alias: for lists that
    /// show people beside rows of their own (the overdue list), read in the same query instead of as Fluent models.
    static func plainColumns(_ alias: String) -> SQLQueryString {
        let names = ["id", "first_name", "last_name", "email", "position", "department", "manager_id", "locale", "status",
                     "role", "company_id", "client_id", "current_client_id", "totp_enabled", "last_login_at", "created_at", "updated_at"]
        // The role is a PostgreSQL enum, sent in binary as a type PostgresNIO does not read as text.
        return SQLQueryString(names.map { $0 == "role" ? "CAST(\(alias).role AS TEXT)" : "\(alias).\($0)" }.joined(separator: ", "))
    }

    init(plain row: inout PlainRow) throws {
        id = try row.next()
        firstName = try row.next()
        lastName = try row.next()
        name = User.fullName(firstName, lastName)
        email = try row.next()
        position = try row.next()
        department = try row.next()
        managerId = try row.next()
        locale = try row.next()
        status = try row.next()
        role = try row.next()
        companyId = try row.next()
        clientId = try row.next()
        currentClientId = try row.next()
        totpEnabled = try row.next()
        lastLoginAt = try row.next()
        createdAt = try row.next()
        updatedAt = try row.next()
    }
}

/// Body of POST and PUT /api/v1/users. Every field optional at decode time so validation can list all problems.
struct UserInput: Decodable, Sendable {
    var firstName: String?
    var lastName: String?
    var email: String?
    var position: String?
    var department: String?
    var managerId: String?
    var locale: String?
    var status: String?
    var role: String?
    var password: String?
}

/// The camelCase user of the tabletop family (`/api/auth`).
struct AccountResponse: Encodable, Sendable {
    let id: UUID
    let email: String
    let firstName: String
    let lastName: String
    let role: String
    let companyId: UUID
    @Nullable var clientId: UUID?
    let totpEnabled: Bool

    init(_ user: User) {
        id = user.id!
        email = user.email
        firstName = user.firstName
        lastName = user.lastName
        role = user.role.rawValue
        companyId = user.$company.id
        clientId = user.$client.id
        totpEnabled = user.totpEnabled
    }
}
