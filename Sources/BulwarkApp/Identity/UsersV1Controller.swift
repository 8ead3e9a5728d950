import Fluent
import Vapor

/// Seed 000 users: /api/v1/users.
struct UsersV1Controller: RouteCollection {
    func boot(routes: any RoutesBuilder) throws {
        let users = routes.grouped("api", "v1", "users")
        users.get(use: list)
        users.post(use: create)
        // Streamed: a file of a million people is read as it arrives, never held whole.
        users.on(.POST, "import", body: .stream, use: importCSV)
        users.get(":id", use: show)
        users.put(":id", use: update)
        users.delete(":id", use: delete)
    }

    @Sendable func list(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.viewUsers)
        var errors = FieldErrors()
        let page = try PageParams(from: req)
        let filters = UserService.ListFilters(
            search: errors.optional(req.queryText("search"), field: "search"),
            role: errors.oneOf(req.queryText("role"), field: "role", allowed: Role.allCases.map(\.rawValue)),
            status: errors.oneOf(req.queryText("status"), field: "status", allowed: User.statuses),
            department: errors.optional(req.queryText("department"), field: "department"),
            managerID: errors.uuid(req.queryText("manager_id"), field: "manager_id"),
            sort: SortOrder(req.queryText("sort"), allowed: UserService.sortable, errors: &errors))
        try errors.throwIfAny(from: .query)
        let keyset = UserService.keyset(for: filters.sort)
        if keyset == nil, !(req.queryText("cursor") ?? "").isEmpty {
            throw APIError.validation(["cursor": ["Paging by cursor needs a sort on a column every person has a value for."]])
        }
        let cursor = try keyset?.cursor(from: req)
        let client = try await scope.actingClient()
        return try req.envelope(page: try await req.userService().list(in: client, filters: filters, page: page, cursor: cursor))
    }

    @Sendable func create(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageUsers)
        let input = try req.decodeBody(UserInput.self)
        let client = try await scope.actingClient()
        let user = try await req.userService().create(input, in: client)
        return try req.envelope(UserResponse(user), status: .created)
    }

    @Sendable func show(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.viewUsers)
        let user = try await scope.user(req.parameters.get("id"), of: try await scope.actingClient())
        return try req.envelope(UserResponse(user))
    }

    @Sendable func update(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageUsers)
        let client = try await scope.actingClient()
        let user = try await scope.user(req.parameters.get("id"), of: client)
        let input = try req.decodeBody(UserInput.self)
        return try req.envelope(UserResponse(try await req.userService().update(user, with: input, in: client)))
    }

    struct Deleted: Encodable {
        let id: UUID
        let deleted = true
    }

    @Sendable func delete(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageUsers)
        let client = try await scope.actingClient()
        let user = try await scope.user(req.parameters.get("id"), of: client)
        let id = user.id!
        try await req.userService().delete(user, in: client)
        return try req.envelope(Deleted(id: id))
    }

    @Sendable func importCSV(req: Request) async throws -> Response {
        do {
            let response = try await importing(req)
            await FreedMemory.returnToSystem(req.application)
            return response
        } catch {
            await FreedMemory.returnToSystem(req.application)
            throw error
        }
    }

    private func importing(_ req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.manageUsers)
        let client = try await scope.actingClient()
        let service = UserImportService(scope: scope, actor: req.auditActor, now: req.now, writers: req.application.importWriters)
        if req.headers.contentType?.type == "multipart" {
            return try req.envelope(try await service.importCSV(try await multipartCSV(of: req), into: client))
        }
        // The first piece tells an empty body from a file: an empty one is a validation error, not an empty file.
        var pieces = req.body.makeAsyncIterator()
        var pending = try await pieces.next()
        guard let first = pending, first.readableBytes > 0 else {
            throw APIError.validation(["file": ["Send the CSV as a text/csv body or a multipart field named file."]])
        }
        return try req.envelope(try await service.importCSV(reading: {
            if let buffer = pending {
                pending = nil
                return buffer
            }
            return try await pieces.next()
        }, into: client))
    }

    /// The CSV of a multipart form's `file` field (forms are small: read whole, up to 20 MB).
    private func multipartCSV(of req: Request) async throws -> String {
        struct Upload: Decodable { var file: File }
        _ = try await req.body.collect(max: 20 * 1024 * 1024).get()
        guard let upload = try? req.content.decode(Upload.self, as: .formData) else {
            throw APIError.validation(["file": ["Attach the CSV as the multipart field file."]])
        }
        return String(buffer: upload.file.data)
    }
}
