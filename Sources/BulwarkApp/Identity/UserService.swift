import Fluent
import Vapor

/// Users of one client: listing, creating, updating, deactivating, erasing, importing.
struct UserService: Sendable {
    let scope: Scope
    let actor: AuditActor
    let passwords: PasswordHasher
    let now: Date

    /// Roles that belong to a client; company-wide roles are managed at company level.
    static let clientRoles: [Role] = [.clientAdmin, .manager, .companyUser]
    static let sortable = ["first_name", "last_name", "email", "department", "status", "created_at", "last_login_at"]

    struct ListFilters: Sendable {
        var search: String?
        var role: String?
        var status: String?
        var department: String?
        var managerID: UUID?
        var sort: SortOrder?
    }

    /// The keyset of a list order: the sort column (non-null ones only) then the id, in the sort's direction.
    static func keyset(for sort: SortOrder?) -> Keyset<User>? {
        let id: (name: String, value: @Sendable (User) -> Keyset<User>.Value) = ("id", { .id($0.id!) })
        guard let sort else {
            return Keyset(columns: [("last_name", { .text($0.lastName) }), ("first_name", { .text($0.firstName) }), id],
                          descending: false)
        }
        let value: (@Sendable (User) -> Keyset<User>.Value)?
        switch sort.column {
        case "first_name": value = { .text($0.firstName) }
        case "last_name": value = { .text($0.lastName) }
        case "email": value = { .text($0.email) }
        case "status": value = { .text($0.status) }
        case "created_at": value = { .time(($0.createdAt ?? .distantPast).timeIntervalSinceReferenceDate) }
        default: value = nil
        }
        return value.map { Keyset(columns: [(sort.column, $0), id], descending: sort.descending) }
    }

    func list(in client: Client, filters: ListFilters, page: PageParams, cursor: [Keyset<User>.Value]? = nil) async throws
        -> PageResult<UserResponse> {
        let query = scope.users(of: client)
        if let search = filters.search { try await UserSearch.apply(search, to: query, on: scope.db) }
        if let role = filters.role.flatMap(Role.init(rawValue:)) { query.filter(\.$role == role) }
        if let status = filters.status { query.filter(\.$status == status) }
        if let department = filters.department { query.filter(\.$department == department) }
        if let managerID = filters.managerID { query.filter(\.$manager.$id == managerID) }
        if let keyset = Self.keyset(for: filters.sort) {
            let (items, meta) = try await query.pageOfModels(page, keyset: keyset, cursor: cursor)
            return PageResult(items: items.map(UserResponse.init), meta: meta)
        }
        if cursor != nil {
            throw APIError.validation(["cursor": ["Paging by cursor needs a sort on a column every person has a value for."]])
        }
        if let sort = filters.sort {
            query.sort(.sql(unsafeRaw: "\"\(User.schema)\".\"\(sort.column)\""), sort.descending ? .descending : .ascending)
        }
        query.sort(\.$id)
        let (items, meta) = try await query.pageOfModels(page)
        return PageResult(items: items.map(UserResponse.init), meta: meta)
    }

    /// Checks a create or update body. `existing` is nil for create, where the names and email are required.
    private func validate(_ input: UserInput, existing: User?, in client: Client) async throws -> ValidatedUser {
        var errors = FieldErrors()
        let creating = existing == nil
        let firstName = creating ? errors.required(input.firstName, field: "first_name", maxLength: 100)
                                 : errors.optional(input.firstName, field: "first_name", maxLength: 100)
        let lastName = creating ? errors.required(input.lastName, field: "last_name", maxLength: 100)
                                : errors.optional(input.lastName, field: "last_name", maxLength: 100)
        let email = errors.email(input.email, required: creating)
        let position = errors.optional(input.position, field: "position")
        let department = errors.optional(input.department, field: "department")
        let managerID = errors.uuid(input.managerId, field: "manager_id")
        let locale = errors.optional(input.locale, field: "locale", maxLength: 10)
        if let locale, locale.range(of: "^[a-zA-Z]{2,3}([-_][a-zA-Z0-9]{2,8})*$", options: .regularExpression) == nil {
            errors.add("locale", "The locale must be a language tag such as en or en-GB.")
        }
        let status = errors.oneOf(input.status, field: "status", allowed: User.statuses)
        let role = errors.oneOf(input.role, field: "role", allowed: Self.clientRoles.map(\.rawValue)).flatMap(Role.init)
        let password = errors.password(input.password, required: false)
        if let managerID {
            if managerID == existing?.id {
                errors.add("manager_id", "A user cannot be their own manager.")
            } else if try await scope.users(of: client).filter(\.$id == managerID).first() == nil {
                errors.add("manager_id", "The selected manager does not exist.")
            }
        }
        if let email, email != existing?.email,
           try await User.query(on: scope.db).filter(\.$email == email).first() != nil {
            errors.add("email", "The email has already been taken.")
        }
        try errors.throwIfAny()
        if let role, role.rank > scope.principal.role.rank {
            throw APIError.forbidden("You cannot grant a role above your own.")
        }
        return ValidatedUser(firstName: firstName, lastName: lastName, email: email, position: position,
                             department: department, managerID: managerID, locale: locale, status: status,
                             role: role, password: password)
    }

    private struct ValidatedUser {
        var firstName, lastName, email, position, department: String?
        var managerID: UUID?
        var locale, status: String?
        var role: Role?
        var password: String?
    }

    func create(_ input: UserInput, in client: Client) async throws -> User {
        let valid = try await validate(input, existing: nil, in: client)
        let user = User(companyID: client.$company.id, clientID: client.id!, firstName: valid.firstName!,
                        lastName: valid.lastName!, email: valid.email!, role: valid.role ?? .companyUser,
                        status: valid.status ?? "active", locale: valid.locale ?? "en")
        user.position = valid.position
        user.department = valid.department
        user.$manager.id = valid.managerID
        if let password = valid.password { user.passwordHash = try await passwords.hash(password) }
        let actor = self.actor
        let now = self.now
        try await scope.db.transaction { db in
            try await user.create(on: db)
            try await AuditService(db: db, now: now).record(
                AuditEvent("user.created", target: ("user", user.id), companyID: client.$company.id, clientID: client.id,
                           details: ["email": .string(user.email), "role": .string(user.role.rawValue)]),
                by: actor)
        }
        return user
    }

    func update(_ user: User, with input: UserInput, in client: Client) async throws -> User {
        let valid = try await validate(input, existing: user, in: client)
        if user.role.rank > scope.principal.role.rank { throw APIError.forbidden("You cannot change a user above your role.") }
        var changed: [String] = []
        func apply<T: Equatable>(_ value: T?, _ keyPath: ReferenceWritableKeyPath<User, T>, _ name: String) {
            if let value, user[keyPath: keyPath] != value { user[keyPath: keyPath] = value; changed.append(name) }
        }
        apply(valid.firstName, \.firstName, "first_name")
        apply(valid.lastName, \.lastName, "last_name")
        apply(valid.email, \.email, "email")
        apply(valid.position, \.position, "position")
        apply(valid.department, \.department, "department")
        apply(valid.locale, \.locale, "locale")
        apply(valid.status, \.status, "status")
        apply(valid.role, \.role, "role")
        if let managerID = valid.managerID, user.$manager.id != managerID { user.$manager.id = managerID; changed.append("manager_id") }
        if let password = valid.password { user.passwordHash = try await passwords.hash(password); changed.append("password") }
        let actor = self.actor
        let now = self.now
        let changedFields = changed
        try await scope.db.transaction { db in
            try await user.save(on: db)
            try await AuditService(db: db, now: now).record(
                AuditEvent("user.updated", target: ("user", user.id), companyID: client.$company.id, clientID: client.id,
                           details: ["fields": .array(changedFields.map(JSONValue.string))]),
                by: actor)
        }
        return user
    }

    /// Deletes a person as seed 000's DELETE means it: afterwards they answer 404 and are in no list, and cannot sign
    /// in. The row stays as a pseudonymous tombstone, so the history reports and the audit log rely on (enrolments,
    /// simulation results, leaderboard points) keeps its figures without naming them. Deactivating is a PUT of status.
    func delete(_ user: User, in client: Client) async throws {
        if user.id == scope.principal.userID { throw APIError.conflict("You cannot delete your own account here.") }
        if user.role.rank > scope.principal.role.rank { throw APIError.forbidden("You cannot delete a user above your role.") }
        let actor = self.actor
        let now = self.now
        try await scope.db.transaction { db in
            try await UserErasure(db: db, now: now).erase(user)
            try await AuditService(db: db, now: now).record(
                AuditEvent("user.erased", target: ("user", user.id), companyID: client.$company.id, clientID: client.id),
                by: actor)
        }
    }
}

extension Request {
    func userService() throws -> UserService {
        UserService(scope: try scope(), actor: auditActor, passwords: application.passwordHasher, now: now)
    }
}
