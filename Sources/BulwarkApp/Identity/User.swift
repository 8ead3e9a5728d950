import Fluent
import Vapor

/// One person, whatever route family they are seen through.
final class User: Model, @unchecked Sendable {
    static let schema = "users"

    static let statuses = ["active", "inactive"]

    @ID(key: .id) var id: UUID?
    @Parent(key: "company_id") var company: Company
    /// Home client of client-bound roles; nil for company-wide staff.
    @OptionalParent(key: "client_id") var client: Client?
    /// The client the /api/v1 and tabletop families act on for this user.
    @OptionalParent(key: "current_client_id") var currentClient: Client?
    @Field(key: "first_name") var firstName: String
    @Field(key: "last_name") var lastName: String
    @Field(key: "email") var email: String
    @OptionalField(key: "position") var position: String?
    @OptionalField(key: "department") var department: String?
    @OptionalParent(key: "manager_id") var manager: User?
    @Field(key: "locale") var locale: String
    @Field(key: "status") var status: String
    @Enum(key: "role") var role: Role
    @OptionalField(key: "password_hash") var passwordHash: String?
    /// TOTP seed, sealed with the master key.
    @OptionalField(key: "totp_secret") var totpSecret: String?
    @Field(key: "totp_enabled") var totpEnabled: Bool
    @Field(key: "failed_logins") var failedLogins: Int
    @OptionalField(key: "locked_until") var lockedUntil: Date?
    @OptionalField(key: "last_login_at") var lastLoginAt: Date?
    /// Set when the person was deleted; the row stays as a pseudonymous tombstone (see `UserErasure`).
    @OptionalField(key: "deleted_at") var deletedAt: Date?
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?
    @Timestamp(key: "updated_at", on: .update) var updatedAt: Date?

    init() {}

    /// Listed by hand (`ModelPropertiesTests` checks the list against reflection): Fluent's default finds them by
    /// reflection on every row it reads or writes, which was a fifth of a list's CPU.
    var properties: [any AnyProperty] {
        [
            _id, _company, _client, _currentClient, _firstName, _lastName, _email, _position, _department, _manager,
            _locale, _status, _role, _passwordHash, _totpSecret, _totpEnabled, _failedLogins, _lockedUntil,
            _lastLoginAt, _deletedAt, _createdAt, _updatedAt
        ]
    }

    init(id: UUID? = nil, companyID: UUID, clientID: UUID?, firstName: String, lastName: String, email: String,
         role: Role = .companyUser, status: String = "active", locale: String = "en") {
        self.id = id
        self.$company.id = companyID
        self.$client.id = clientID
        self.$currentClient.id = clientID
        self.firstName = firstName
        self.lastName = lastName
        self.email = email.lowercased()
        self.role = role
        self.status = status
        self.locale = locale
        self.totpEnabled = false
        self.failedLogins = 0
    }

    var fullName: String { Self.fullName(firstName, lastName) }

    /// "First Last" without blanks at either end (also for rows read as plain SQL); trims only when an end is blank,
    /// since trimming every name was a twentieth of an export.
    static func fullName(_ first: String, _ last: String) -> String {
        let name = "\(first) \(last)"
        return name.first?.isWhitespace == true || name.last?.isWhitespace == true ? name.trimmingCharacters(in: .whitespaces) : name
    }
    var isActive: Bool { status == "active" }
}
