import Fluent
import Vapor

/// Users pages: list with search and paging, create, edit, deactivate, CSV import with per-row results.
struct DashboardUsersController: RouteCollection {
    struct Row: Encodable {
        let id: String
        let name: String
        let email: String
        let department: String?
        let role: String
        let status: String
        let editPath: String
        let deactivatePath: String
    }

    struct ListPage: Encodable {
        let layout: Layout
        let rows: [Row]
        let search: String
        let pagination: PaginationMeta
        let previousPage: String?
        let nextPage: String?
        let canManage: Bool
        let newPath = DashboardPath.usersNew
        let importPath = DashboardPath.usersImport
    }

    struct FormPage: Encodable {
        let layout: Layout
        let heading: String
        let action: String
        let values: [String: String]
        let roles: [String]
        let errors: [FormError]
    }

    struct ImportPage: Encodable {
        struct RejectedRow: Encodable { let row: Int; let email: String?; let problems: String }
        let layout: Layout
        let action = DashboardPath.usersImport
        let report: UserImportService.Report?
        let rejected: [RejectedRow]
        let errors: [FormError]

        init(layout: Layout, report: UserImportService.Report?, errors: [FormError]) {
            self.layout = layout
            self.report = report
            self.errors = errors
            rejected = report?.errors.map { rowError in
                RejectedRow(row: rowError.row, email: rowError.email,
                            problems: rowError.errors.keys.sorted().flatMap { rowError.errors[$0]! }.joined(separator: " "))
            } ?? []
        }
    }

    func boot(routes: any RoutesBuilder) throws {
        let users = routes.grouped(DashboardGuard()).grouped("users")
        users.get(use: list)
        users.get("new", use: newForm)
        users.post(use: create)
        users.get("import", use: importForm)
        users.on(.POST, "import", body: .collect(maxSize: "20mb"), use: importCSV)
        users.get(":id", "edit", use: editForm)
        users.post(":id", use: update)
        users.post(":id", "deactivate", use: deactivate)
    }

    @Sendable func list(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.viewUsers)
        let page = (try? PageParams(from: req)) ?? PageParams()
        let search = (req.queryText("search") ?? "").trimmingCharacters(in: .whitespaces)
        let client = try await scope.actingClient()
        let result = try await req.userService().list(
            in: client, filters: .init(search: search.isEmpty ? nil : search), page: page)
        let rows = result.items.map {
            Row(id: $0.id.uuidString, name: $0.name, email: $0.email, department: $0.department, role: $0.role,
                status: $0.status, editPath: DashboardPath.userEdit($0.id.uuidString),
                deactivatePath: DashboardPath.userDeactivate($0.id.uuidString))
        }
        let encodedSearch = search.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? ""
        func link(_ number: Int) -> String { "\(DashboardPath.users)?page=\(number)&search=\(encodedSearch)" }
        let meta = result.meta
        return try await req.page("users", ListPage(
            layout: Layout(title: "Users", principal: scope.principal, req: req), rows: rows, search: search,
            pagination: meta, previousPage: meta.currentPage > 1 ? link(meta.currentPage - 1) : nil,
            nextPage: meta.currentPage < meta.lastPage ? link(meta.currentPage + 1) : nil,
            canManage: scope.principal.has(.manageUsers)))
    }

    private func formPage(_ req: Request, heading: String, action: String, values: [String: String],
                          errors: [FormError] = []) throws -> FormPage {
        FormPage(layout: Layout(title: heading, principal: try req.principal(), req: req), heading: heading,
                 action: action, values: values, roles: UserService.clientRoles.map(\.rawValue), errors: errors)
    }

    @Sendable func newForm(req: Request) async throws -> Response {
        try req.principal().require(.manageUsers)
        return try await req.page("user-form", try formPage(req, heading: "New user", action: DashboardPath.users,
                                                              values: ["role": "company_user", "status": "active"]))
    }

    @Sendable func create(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageUsers)
        let input = try req.content.decode(UserInput.self)
        do {
            _ = try await req.userService().create(input.withoutEmptyFields, in: try await scope.actingClient())
            return req.redirect(to: DashboardPath.users + "?notice=user_created")
        } catch {
            guard let errors = FormError.from(error) else { throw error }
            return try await req.page("user-form", try formPage(req, heading: "New user", action: DashboardPath.users,
                                                                  values: input.formValues, errors: errors), status: .unprocessableEntity)
        }
    }

    @Sendable func editForm(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageUsers)
        let user = try await scope.user(req.parameters.get("id"), of: try await scope.actingClient())
        return try await req.page("user-form", try formPage(req, heading: "Edit \(user.fullName)",
                                                              action: DashboardPath.user(user.id!.uuidString),
                                                              values: UserInput(user).formValues))
    }

    @Sendable func update(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageUsers)
        let client = try await scope.actingClient()
        let user = try await scope.user(req.parameters.get("id"), of: client)
        let input = try req.content.decode(UserInput.self)
        do {
            _ = try await req.userService().update(user, with: input.withoutEmptyFields, in: client)
            return req.redirect(to: DashboardPath.users + "?notice=user_updated")
        } catch {
            guard let errors = FormError.from(error) else { throw error }
            return try await req.page("user-form", try formPage(req, heading: "Edit \(user.fullName)",
                                                                  action: DashboardPath.user(user.id!.uuidString),
                                                                  values: input.formValues, errors: errors), status: .unprocessableEntity)
        }
    }

    @Sendable func deactivate(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageUsers)
        let client = try await scope.actingClient()
        let user = try await scope.user(req.parameters.get("id"), of: client)
        _ = try await req.userService().update(user, with: UserInput(status: "inactive"), in: client)
        return req.redirect(to: DashboardPath.users + "?notice=user_deactivated")
    }

    @Sendable func importForm(req: Request) async throws -> Response {
        try req.principal().require(.manageUsers)
        return try await req.page("users-import", ImportPage(
            layout: Layout(title: "Import users", principal: try req.principal(), req: req), report: nil, errors: []))
    }

    @Sendable func importCSV(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageUsers)
        struct Upload: Decodable { var file: File?; var csv: String? }
        let upload = try req.content.decode(Upload.self)
        let text = upload.file.map { String(buffer: $0.data) }.flatMap { $0.isEmpty ? nil : $0 } ?? upload.csv ?? ""
        let layout = Layout(title: "Import users", principal: scope.principal, req: req)
        do {
            let report = try await UserImportService(scope: scope, actor: req.auditActor, now: req.now, writers: req.application.importWriters)
                .importCSV(text, into: try await scope.actingClient())
            return try await req.page("users-import", ImportPage(layout: layout, report: report, errors: []))
        } catch {
            guard let errors = FormError.from(error) else { throw error }
            return try await req.page("users-import", ImportPage(layout: layout, report: nil, errors: errors),
                                      status: .unprocessableEntity)
        }
    }
}

extension UserInput {
    init(_ user: User) {
        self.init(firstName: user.firstName, lastName: user.lastName, email: user.email, position: user.position,
                  department: user.department, managerId: user.$manager.id?.uuidString, locale: user.locale,
                  status: user.status, role: user.role.rawValue, password: nil)
    }

    /// A blank form field means "leave unchanged", not "set to empty".
    var withoutEmptyFields: UserInput {
        func keep(_ value: String?) -> String? { (value?.isEmpty ?? true) ? nil : value }
        return UserInput(firstName: firstName, lastName: lastName, email: email, position: keep(position),
                         department: keep(department), managerId: keep(managerId), locale: keep(locale),
                         status: keep(status), role: keep(role), password: keep(password))
    }

    /// Field values for re-showing the form; names match the inputs (the Swift property names).
    var formValues: [String: String] {
        var values: [String: String] = [:]
        values["firstName"] = firstName
        values["lastName"] = lastName
        values["email"] = email
        values["position"] = position
        values["department"] = department
        values["managerId"] = managerId
        values["locale"] = locale
        values["status"] = status
        values["role"] = role
        return values
    }
}
