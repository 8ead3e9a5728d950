import Foundation

struct CompanyResponse: Encodable, Sendable {
    let id: UUID
    let name: String
    @Nullable var email: String?
    let subscriptionStatus: String
    let subscriptionPackage: String
    let clientCount: Int
    let userCount: Int
    let createdAt: Date?
    @Nullable var subscriptionCycleEndDate: Date?

    init(_ company: Company, clientCount: Int, userCount: Int) {
        id = company.id!
        name = company.name
        email = company.email
        subscriptionStatus = company.subscriptionStatus
        subscriptionPackage = company.subscriptionPackage
        self.clientCount = clientCount
        self.userCount = userCount
        createdAt = company.createdAt
        subscriptionCycleEndDate = company.subscriptionCycleEndDate
    }
}

struct ClientResponse: Encodable, Sendable {
    let id: UUID
    let companyId: UUID
    let name: String
    let status: String
    @Nullable var city: String?
    @Nullable var state: String?
    @Nullable var country: String?
    @Nullable var emailDeliverySettings: String?
    @Nullable var industry: String?
    @Nullable var employeeCount: Int?
    let policyCount: Int
    let assessmentCount: Int
    let createdAt: Date?

    init(_ client: Client, counts: ClientFigures.Counts) {
        id = client.id!
        companyId = client.$company.id
        name = client.name
        status = client.status
        city = client.city
        state = client.state
        country = client.country
        emailDeliverySettings = client.emailDeliverySettings
        industry = client.industry
        employeeCount = client.employeeCount
        policyCount = counts.policies
        assessmentCount = counts.assessments
        createdAt = client.createdAt
    }
}

/// Body of POST /api/v3/companies/{companyId}/clients.
struct ClientInput: Decodable, Sendable {
    var name: String?
    var status: String?
    var city: String?
    var state: String?
    var country: String?
    var emailDeliverySettings: String?
    var industry: String?
    var employeeCount: Int?
}
