import Fluent
import SQLKit
import Vapor

/// Turns a person into a pseudonymous tombstone: every field that names them is replaced, every way in is closed,
/// and the rows that hold history keep pointing at the same id. Copies of their name kept elsewhere for history
/// (phishing simulations) are pseudonymised too. Audit entries keep what they recorded: the chain cannot be rewritten.
struct UserErasure: Sendable {
    static let status = "deleted"
    let db: any Database
    let now: Date

    static func pseudonymousEmail(for id: UUID) -> String { "deleted-\(id.lowercasedString)@deleted.invalid" }

    func erase(_ user: User) async throws {
        let id = user.id!
        let email = Self.pseudonymousEmail(for: id)
        user.firstName = "Deleted"
        user.lastName = "person"
        user.email = email
        user.position = nil
        user.department = nil
        user.$manager.id = nil
        user.passwordHash = nil
        user.totpSecret = nil
        user.totpEnabled = false
        user.status = Self.status
        user.role = .companyUser
        user.deletedAt = now
        try await user.save(on: db)
        try await User.query(on: db).filter(\.$manager.$id == id).set(\.$manager.$id, to: nil).update()
        try await AuthSession.query(on: db).filter(\.$user.$id == id).filter(\.$revokedAt == nil).set(\.$revokedAt, to: now).update()
        try await APIKey.query(on: db).filter(\.$user.$id == id).filter(\.$revokedAt == nil).set(\.$revokedAt, to: now).update()
        try await IdentityLink.query(on: db).filter(\.$user.$id == id).delete()
        try await db.sql.raw("""
            UPDATE phishing_simulations SET email = \(bind: email), first_name = 'Deleted', last_name = 'person',
                department = NULL, position = NULL
            WHERE user_id = \(bind: id)
            """).run()
    }
}

struct UpdateUsersAddDeletedAt: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(User.schema).field("deleted_at", .datetime).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(User.schema).deleteField("deleted_at").update()
    }
}
