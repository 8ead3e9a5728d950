import Fluent
import Vapor

/// Turns a principal into query scopes. Every read and write of tenant data starts here; an id outside
/// the caller's reach answers 404, never 403 and never data.
struct Scope: Sendable {
    let principal: Principal
    let db: any Database
    /// `X-Client-Id` header: which client an MSP user acts on in the /api/v1 and tabletop families.
    let requestedClientID: String?
    /// Cached client lookups for the acting client (requests pass the application's; nil reads the database).
    var records: RecordCache? = nil

    var isSuperAdmin: Bool { principal.role == .superAdmin }

    func require(_ permission: Permission) throws { try principal.require(permission) }

    // MARK: Companies

    func companies() -> QueryBuilder<Company> {
        let query = Company.query(on: db)
        return isSuperAdmin ? query : query.filter(\.$id == principal.companyID)
    }

    func company(_ rawID: String?) async throws -> Company {
        guard let id = rawID.flatMap(UUID.init(uuidString:)),
              let company = try await companies().filter(\.$id == id).first() else {
            throw APIError.notFound("Company")
        }
        return company
    }

    // MARK: Clients

    func clients(ofCompany companyID: UUID) -> QueryBuilder<Client> {
        let query = Client.query(on: db).filter(\.$company.$id == companyID)
        if let confined = principal.confinedClientID { return query.filter(\.$id == confined) }
        return query
    }

    func client(_ rawID: String?, ofCompany companyID: UUID) async throws -> Client {
        guard let id = rawID.flatMap(UUID.init(uuidString:)),
              let client = try await clients(ofCompany: companyID).filter(\.$id == id).first() else {
            throw APIError.notFound("Client")
        }
        return client
    }

    /// The client the /api/v1 and tabletop families act on: an API key's bound client, a client-bound user's
    /// own client, or for company-wide staff the `X-Client-Id` header, else their `current_client_id`.
    func actingClient() async throws -> Client {
        if let confined = principal.confinedClientID {
            if let requested = requestedClientID, UUID(uuidString: requested) != confined {
                throw APIError.notFound("Client")
            }
            guard let client = try await findClient(confined) else { throw APIError.notFound("Client") }
            return client
        }
        let chosen = requestedClientID ?? principal.user.$currentClient.id?.uuidString
        guard let chosen else {
            throw APIError.badRequest("Choose the client to act on with the X-Client-Id header.")
        }
        guard let id = UUID(uuidString: chosen), let client = try await findClient(id),
              isSuperAdmin || client.$company.id == principal.companyID else { throw APIError.notFound("Client") }
        return client
    }

    private func findClient(_ id: UUID) async throws -> Client? {
        if let records { return try await records.find(Client.self, id, on: db) }
        return try await Client.find(id, on: db)
    }

    // MARK: Users

    /// Every user the caller may see (the v4 reach): all for a super admin, the company for MSP staff,
    /// the own client for client-bound roles.
    func reachableUsers() -> QueryBuilder<User> {
        let query = User.query(on: db).filter(.sql(unsafeRaw: "users.\(User.notDeleted)"))
        if let confined = principal.confinedClientID { return query.filter(\.$client.$id == confined) }
        return isSuperAdmin ? query : query.filter(\.$company.$id == principal.companyID)
    }

    /// Users of one client (the /api/v1 reach). Deleted people (tombstones) are never part of it.
    func users(of client: Client) -> QueryBuilder<User> {
        User.query(on: db).filter(\.$client.$id == client.id!).filter(.sql(unsafeRaw: "users.\(User.notDeleted)"))
    }

    func user(_ rawID: String?, of client: Client) async throws -> User {
        guard let id = rawID.flatMap(UUID.init(uuidString:)),
              let user = try await users(of: client).filter(\.$id == id).first() else {
            throw APIError.notFound("User")
        }
        return user
    }
}
