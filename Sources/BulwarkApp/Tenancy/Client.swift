import Fluent
import Vapor

/// An organisation whose people are trained, phished and assessed. Belongs to one company.
final class Client: Model, @unchecked Sendable {
    static let schema = "clients"

    static let statuses = ["ACTIVE", "INACTIVE"]

    @ID(key: .id) var id: UUID?
    @Parent(key: "company_id") var company: Company
    @Field(key: "name") var name: String
    @Field(key: "status") var status: String
    @OptionalField(key: "city") var city: String?
    @OptionalField(key: "state") var state: String?
    @OptionalField(key: "country") var country: String?
    @OptionalField(key: "email_delivery_settings") var emailDeliverySettings: String?
    @OptionalField(key: "industry") var industry: String?
    @OptionalField(key: "employee_count") var employeeCount: Int?
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?
    @Timestamp(key: "updated_at", on: .update) var updatedAt: Date?

    init() {}

    init(id: UUID? = nil, companyID: UUID, name: String, status: String = "ACTIVE") {
        self.id = id
        self.$company.id = companyID
        self.name = name
        self.status = status
    }
}
