@testable import BulwarkApp
import Fluent
import Foundation
import Vapor

/// A company with one client, an administrator and their bearer token.
struct TestTenant {
    let company: Company
    let client: Client
    let admin: User
    let token: String

    /// As identifiers go out on the wire: lowercase.
    var companyID: String { company.id!.wire }
    var clientID: String { client.id!.wire }
}

enum Factory {
    static func tenant(_ app: Application, name: String = "Acme", adminRole: Role = .clientAdmin) async throws -> TestTenant {
        let company = Company(name: "\(name) MSP", email: "contact@\(name.lowercased()).test")
        try await company.create(on: app.db)
        let client = Client(companyID: company.id!, name: "\(name) Client")
        try await client.create(on: app.db)
        let admin = try await Factory.user(app, company: company, client: adminRole.isCompanyWide ? nil : client,
                                   role: adminRole, email: "admin-\(UUID().uuidString.prefix(8))@\(name.lowercased()).test")
        if adminRole.isCompanyWide {
            admin.$currentClient.id = client.id
            try await admin.save(on: app.db)
        }
        return TestTenant(company: company, client: client, admin: admin, token: try await token(app, for: admin))
    }

    @discardableResult
    static func user(_ app: Application, company: Company, client: Client?, role: Role = .companyUser,
                     email: String? = nil, firstName: String = "Test", lastName: String = "Person",
                     department: String? = nil, password: String? = "password123") async throws -> User {
        let user = User(companyID: company.id!, clientID: client?.id, firstName: firstName, lastName: lastName,
                        email: email ?? "user-\(UUID().uuidString.prefix(8))@example.test", role: role)
        user.department = department
        if let password { user.passwordHash = try await app.passwordHasher.hash(password) }
        try await user.create(on: app.db)
        return user
    }

    @discardableResult
    static func user(_ app: Application, in tenant: TestTenant, role: Role = .companyUser, email: String? = nil,
                     firstName: String = "Test", lastName: String = "Person", department: String? = nil) async throws -> User {
        try await Factory.user(app, company: tenant.company, client: tenant.client, role: role, email: email,
                       firstName: firstName, lastName: lastName, department: department)
    }

    static func token(_ app: Application, for user: User) async throws -> String {
        try await TokenService(keys: app.bulwarkKeys, db: app.db, now: app.clock.now(), lifetime: 86_400)
            .issue(for: user, ip: nil, userAgent: nil).token
    }
}

extension UUID {
    /// The form Bulwark writes identifiers in.
    var wire: String { uuidString.lowercased() }
}
