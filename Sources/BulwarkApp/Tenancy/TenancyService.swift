import Fluent
import SQLKit
import Vapor

/// Companies and their clients, as far as the caller's scope reaches.
struct TenancyService: Sendable {
    let scope: Scope
    let actor: AuditActor
    let now: Date
    let figures: ClientFigures

    static let deliverySettings = ["SMTP", "MICROSOFT_365", "GOOGLE_WORKSPACE", "NONE"]

    func companies(page: PageParams) async throws -> PageResult<CompanyResponse> {
        let (companies, meta) = try await scope.companies().sort(\.$name).sort(\.$id).pageOfModels(page)
        let ids = companies.compactMap(\.id)
        let clients = try await counts(in: Client.schema, companyIDs: ids)
        let users = try await counts(in: User.schema, companyIDs: ids)
        let items = companies.map {
            CompanyResponse($0, clientCount: clients[$0.id!] ?? 0, userCount: users[$0.id!] ?? 0)
        }
        return PageResult(items: items, meta: meta)
    }

    func response(for company: Company) async throws -> CompanyResponse {
        let clients = try await counts(in: Client.schema, companyIDs: [company.id!])
        let users = try await counts(in: User.schema, companyIDs: [company.id!])
        return CompanyResponse(company, clientCount: clients[company.id!] ?? 0, userCount: users[company.id!] ?? 0)
    }

    /// Rows per company in one grouped query, so a page of companies costs two counts, not two per company.
    private func counts(in table: String, companyIDs: [UUID]) async throws -> [UUID: Int] {
        guard !companyIDs.isEmpty else { return [:] }
        let query = scope.db.sql.select()
            .column("company_id").column(SQLFunction("COUNT", args: SQLLiteral.all), as: "total")
            .from(table)
            .where("company_id", .in, companyIDs)
        // Deleted people stay as tombstones for history; they are nobody's users any more.
        if table == User.schema { query.where("status", .notEqual, UserErasure.status) }
        let rows = try await query.groupBy("company_id").all()
        var result: [UUID: Int] = [:]
        for row in rows {
            result[try row.decode(column: "company_id", as: UUID.self)] = try row.decode(column: "total", as: Int.self)
        }
        return result
    }

    struct ClientFilters: Sendable {
        var status: String?
        var search: String?
    }

    func clients(of company: Company, filters: ClientFilters, page: PageParams) async throws -> PageResult<ClientResponse> {
        let query = scope.clients(ofCompany: company.id!)
        if let status = filters.status { query.filter(\.$status == status) }
        if let search = filters.search { query.search(search, in: ["name"]) }
        let (clients, meta) = try await query.sort(\.$name).sort(\.$id).pageOfModels(page)
        let counts = try await figures.counts(for: clients.compactMap(\.id), on: scope.db)
        return PageResult(items: clients.map { ClientResponse($0, counts: counts[$0.id!] ?? .init()) }, meta: meta)
    }

    func response(for client: Client) async throws -> ClientResponse {
        ClientResponse(client, counts: try await figures.counts(for: [client.id!], on: scope.db)[client.id!] ?? .init())
    }

    func createClient(in company: Company, input: ClientInput) async throws -> Client {
        try scope.require(.manageClients)
        var errors = FieldErrors()
        let name = errors.required(input.name, field: "name")
        let status = errors.oneOf(input.status?.uppercased(), field: "status", allowed: Client.statuses)
        let city = errors.optional(input.city, field: "city", maxLength: 100)
        let state = errors.optional(input.state, field: "state", maxLength: 100)
        let country = errors.optional(input.country, field: "country", maxLength: 2)
        if let country, country.count != 2 || !country.allSatisfy(\.isLetter) {
            errors.add("country", "The country must be a two-letter ISO 3166 code.")
        }
        let delivery = errors.oneOf(input.emailDeliverySettings?.uppercased(), field: "email_delivery_settings",
                                    allowed: Self.deliverySettings)
        let industry = errors.optional(input.industry, field: "industry", maxLength: 100)
        let employees = errors.range(input.employeeCount, field: "employee_count", min: 0, max: 10_000_000)
        try errors.throwIfAny()
        let client = Client(companyID: company.id!, name: name!, status: status ?? "ACTIVE")
        client.city = city
        client.state = state
        client.country = country?.uppercased()
        client.emailDeliverySettings = delivery
        client.industry = industry
        client.employeeCount = employees
        let actor = self.actor
        let now = self.now
        try await scope.db.transaction { db in
            try await client.create(on: db)
            try await AuditService(db: db, now: now).record(
                AuditEvent("client.created", target: ("client", client.id), companyID: company.id, clientID: client.id,
                           details: ["name": .string(client.name)]),
                by: actor)
        }
        return client
    }
}

extension Request {
    func tenancyService() throws -> TenancyService {
        TenancyService(scope: try scope(), actor: auditActor, now: now, figures: application.clientFigures)
    }
}
