import Fluent
import Vapor

/// Companies and their clients, as far as the caller's scope reaches.
struct TenancyService: Sendable {
    let scope: Scope
    let actor: AuditActor
    let now: Date

    static let deliverySettings = ["SMTP", "MICROSOFT_365", "GOOGLE_WORKSPACE", "NONE"]

    func companies(page: PageParams) async throws -> PageResult<CompanyResponse> {
        let (companies, meta) = try await scope.companies().sort(\.$name).sort(\.$id).pageOfModels(page)
        var items: [CompanyResponse] = []
        for company in companies { items.append(try await response(for: company)) }
        return PageResult(items: items, meta: meta)
    }

    func response(for company: Company) async throws -> CompanyResponse {
        let clients = try await Client.query(on: scope.db).filter(\.$company.$id == company.id!).count()
        let users = try await User.query(on: scope.db).filter(\.$company.$id == company.id!).count()
        return CompanyResponse(company, clientCount: clients, userCount: users)
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
        return PageResult(items: clients.map(ClientResponse.init), meta: meta)
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
        TenancyService(scope: try scope(), actor: auditActor, now: now)
    }
}
