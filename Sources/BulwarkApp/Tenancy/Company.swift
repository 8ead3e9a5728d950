import Fluent
import Vapor

/// A tenant at the top of the tree: an MSP or a direct customer.
final class Company: Model, @unchecked Sendable {
    static let schema = "companies"

    @ID(key: .id) var id: UUID?
    @Field(key: "name") var name: String
    @OptionalField(key: "email") var email: String?
    @Field(key: "subscription_status") var subscriptionStatus: String
    @Field(key: "subscription_package") var subscriptionPackage: String
    @OptionalField(key: "subscription_cycle_end_date") var subscriptionCycleEndDate: Date?
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?
    @Timestamp(key: "updated_at", on: .update) var updatedAt: Date?

    init() {}

    init(id: UUID? = nil, name: String, email: String? = nil,
         subscriptionStatus: String = "active", subscriptionPackage: String = "free") {
        self.id = id
        self.name = name
        self.email = email
        self.subscriptionStatus = subscriptionStatus
        self.subscriptionPackage = subscriptionPackage
    }
}
