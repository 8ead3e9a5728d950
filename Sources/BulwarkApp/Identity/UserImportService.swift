import Fluent
import Vapor

/// CSV import of users (first_name,last_name,email,position,department,manager_email). Valid rows are imported,
/// every invalid row is reported with its line number and reasons.
struct UserImportService: Sendable {
    static let columns = ["first_name", "last_name", "email", "position", "department", "manager_email"]
    static let maxRows = 50_000

    struct RowError: Encodable, Sendable {
        let row: Int
        @Nullable var email: String?
        let errors: [String: [String]]
    }

    struct Report: Encodable, Sendable {
        let totalRows: Int
        let imported: Int
        let failed: Int
        let errors: [RowError]
    }

    let scope: Scope
    let actor: AuditActor
    let now: Date

    func importCSV(_ text: String, into client: Client) async throws -> Report {
        var rows = CSV.parse(text)
        guard !rows.isEmpty else { throw APIError.validation(["file": ["The CSV file is empty."]]) }
        let header = rows.removeFirst().map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        let missing = ["first_name", "last_name", "email"].filter { !header.contains($0) }
        guard missing.isEmpty else {
            throw APIError.validation(["file": ["The header row must name the columns \(Self.columns.joined(separator: ",")); missing: \(missing.joined(separator: ", "))."]])
        }
        guard rows.count <= Self.maxRows else {
            throw APIError.validation(["file": ["At most \(Self.maxRows) rows can be imported at once."]])
        }
        func value(_ row: [String], _ column: String) -> String? {
            guard let index = header.firstIndex(of: column), index < row.count else { return nil }
            return row[index]
        }

        let existingEmails = Set(try await User.query(on: scope.db).field(\.$email).all().map(\.email))
        let clientUsers = try await scope.users(of: client).field(\.$id).field(\.$email).all()
        var managerIDs = Dictionary(uniqueKeysWithValues: clientUsers.map { ($0.email, $0.id!) })

        struct Candidate { let line: Int; let user: User; let managerEmail: String? }
        var candidates: [Candidate] = []
        var rowErrors: [RowError] = []
        var seen = Set<String>()
        for (index, row) in rows.enumerated() {
            let line = index + 2
            var errors = FieldErrors()
            let first = errors.required(value(row, "first_name"), field: "first_name", maxLength: 100)
            let last = errors.required(value(row, "last_name"), field: "last_name", maxLength: 100)
            let email = errors.email(value(row, "email"))
            let position = errors.optional(value(row, "position"), field: "position")
            let department = errors.optional(value(row, "department"), field: "department")
            let managerEmail = errors.email(value(row, "manager_email"), field: "manager_email", required: false)
            if let email {
                if existingEmails.contains(email) { errors.add("email", "The email has already been taken.") }
                else if seen.contains(email) { errors.add("email", "The email appears more than once in the file.") }
            }
            if let email, email == managerEmail { errors.add("manager_email", "A user cannot be their own manager.") }
            guard errors.isEmpty, let first, let last, let email else {
                rowErrors.append(RowError(row: line, email: email ?? value(row, "email"), errors: errors.details))
                continue
            }
            seen.insert(email)
            let user = User(companyID: client.$company.id, clientID: client.id!, firstName: first, lastName: last, email: email)
            user.id = UUID()
            user.position = position
            user.department = department
            candidates.append(Candidate(line: line, user: user, managerEmail: managerEmail))
        }
        for candidate in candidates { managerIDs[candidate.user.email] = candidate.user.id }

        // A manager must already exist in this client or be a valid row of the same file.
        var accepted: [User] = []
        for candidate in candidates {
            if let managerEmail = candidate.managerEmail {
                guard let managerID = managerIDs[managerEmail] else {
                    rowErrors.append(RowError(row: candidate.line, email: candidate.user.email,
                                              errors: ["manager_email": ["No user with this email in the organisation or the file."]]))
                    continue
                }
                candidate.user.$manager.id = managerID
            }
            accepted.append(candidate.user)
        }
        // Rows that name a rejected row as manager are imported without a manager rather than lost.
        let acceptedIDs = Set(accepted.compactMap(\.id)).union(clientUsers.compactMap(\.id))
        for user in accepted where user.$manager.id.map({ !acceptedIDs.contains($0) }) ?? false { user.$manager.id = nil }

        let actor = self.actor
        let now = self.now
        let toInsert = accepted
        let failedCount = rowErrors.count
        try await scope.db.transaction { db in
            // Managers first, so every manager_id points at a row that already exists. Rows in a management
            // cycle go in without a manager, which is set once the whole cycle exists.
            var pending = toInsert
            var inserted = Set(clientUsers.compactMap(\.id))
            var deferredManagers: [(UUID, UUID)] = []
            while !pending.isEmpty {
                var batch = pending.filter { $0.$manager.id.map(inserted.contains) ?? true }
                if batch.isEmpty {
                    batch = pending
                    for user in batch {
                        if let managerID = user.$manager.id { deferredManagers.append((user.id!, managerID)) }
                        user.$manager.id = nil
                    }
                }
                for start in stride(from: 0, to: batch.count, by: 500) {
                    try await Array(batch[start..<min(start + 500, batch.count)]).create(on: db)
                }
                let done = Set(batch.compactMap(\.id))
                inserted.formUnion(done)
                pending.removeAll { done.contains($0.id!) }
            }
            for (userID, managerID) in deferredManagers {
                try await User.query(on: db).filter(\.$id == userID).set(\.$manager.$id, to: managerID).update()
            }
            try await AuditService(db: db, now: now).record(
                AuditEvent("user.imported", target: ("client", client.id), companyID: client.$company.id, clientID: client.id,
                           details: ["imported": .number(Double(toInsert.count)), "failed": .number(Double(failedCount))]),
                by: actor)
        }
        return Report(totalRows: rows.count, imported: accepted.count, failed: rowErrors.count,
                      errors: rowErrors.sorted { $0.row < $1.row })
    }
}
