import Fluent
import Vapor

/// Who a campaign addresses within one client: everyone, some departments, or chosen people. Training and phishing
/// campaigns share it.
struct Audience: Sendable, Equatable {
    static let types = ["all", "departments", "users"]

    let type: String
    let values: [String]

    /// Validates a request's audience, recording problems under `audience.*`; nil when it is invalid.
    static func validate(_ input: CampaignInput.Audience, clientID: UUID, db: any Database, errors: inout FieldErrors) async throws -> Audience? {
        guard let type = errors.oneOf(input.type ?? "all", field: "audience.type", allowed: types) else { return nil }
        switch type {
        case "departments":
            let departments = (input.departments ?? []).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if departments.isEmpty {
                errors.add("audience.departments", "Name at least one department.")
                return nil
            }
            return Audience(type: type, values: departments)
        case "users":
            let raw = input.userIds ?? []
            let ids = raw.compactMap(UUID.init(uuidString:))
            if raw.isEmpty || ids.count != raw.count {
                errors.add("audience.user_ids", "List at least one valid user id.")
                return nil
            }
            if try await User.query(on: db).filter(\.$client.$id == clientID).filter(\.$status != UserErasure.status)
                .filter(\.$id ~~ ids).count() != Set(ids).count {
                errors.add("audience.user_ids", "Every user must belong to this organisation.")
                return nil
            }
            return Audience(type: type, values: ids.map(\.uuidString))
        default:
            return Audience(type: type, values: [])
        }
    }

    /// The active people of the client this audience names right now.
    func people(of clientID: UUID, on db: any Database) -> QueryBuilder<User> {
        let query = User.query(on: db).filter(\.$client.$id == clientID).filter(\.$status == "active")
        switch type {
        case "departments": query.filter(\.$department ~~ values)
        case "users": query.filter(\.$id ~~ values.compactMap(UUID.init(uuidString:)))
        default: break
        }
        return query
    }

    /// The next `limit` of those people by id after `after`: walking a whole audience in batches (enrolment, launch)
    /// through the (client, id) index, each batch costing the same however far the walk has gone.
    func peopleIDs(of clientID: UUID, after: UUID?, limit: Int, on db: any Database) -> QueryBuilder<User> {
        let query = people(of: clientID, on: db).field(\.$id).sort(\.$id).limit(limit)
        if let after { query.filter(\.$id > after) }
        return query
    }
}
