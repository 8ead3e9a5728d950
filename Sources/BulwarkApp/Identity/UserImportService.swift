import Fluent
import SQLKit
import Vapor

/// CSV import of users (first_name,last_name,email,position,department,manager_email). Valid rows are imported,
/// every invalid row is reported with its line number and reasons.
///
/// The file is read as it arrives and written in batches of `batchSize` rows, each batch in its own short transaction
/// (other writers wait milliseconds, not the whole import), with one multi-row insert whose email conflicts are
/// skipped by the database (so a person imported twice at once is refused, not duplicated). On PostgreSQL two batches
/// are written at once, on two connections (one backend alone left half the machine idle); SQLite has one writer, so
/// there the next batch is only read and checked meanwhile. Memory stays flat: a few batches,
/// a hash per imported email (to tell "twice in the file" from "already taken"), the manager links of the rows that
/// name one, and at most `maxReportedErrors` row errors (the count of failures is always exact). Managers are linked
/// once every row is in, so a manager may appear anywhere in the file (cycles included); a row whose manager exists
/// neither in the client nor in the file is taken back out and reported, as before.
struct UserImportService: Sendable {
    static let columns = ["first_name", "last_name", "email", "position", "department", "manager_email"]
    static let batchSize = 2_000
    /// A file longer than this is refused at that row (the rows before it are in).
    static let maxRows = 2_000_000
    /// The largest body read (a million people take about 80 MB).
    static let maxBytes = 1_073_741_824
    static let maxReportedErrors = 1_000

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
        /// Present when more rows failed than `errors` lists.
        var errorsTruncated: Bool? = nil
    }

    let scope: Scope
    let actor: AuditActor
    let now: Date
    /// Batches written at once (`Application.importWriters`: one on SQLite, which has one writer).
    var writers = 1

    /// A file already in memory (a form upload) goes through the same streaming parser in slices, so parsing a large
    /// file never holds an event loop for long and the same limits apply.
    func importCSV(_ text: String, into client: Client) async throws -> Report {
        let bytes = Array(text.utf8)
        var offset = 0
        return try await importCSV(reading: {
            guard offset < bytes.count else { return nil }
            let end = min(offset + 65_536, bytes.count)
            defer { offset = end }
            return ByteBuffer(bytes: bytes[offset..<end])
        }, into: client)
    }

    /// Imports CSV read piece by piece (a request body as it arrives) from `next`, which returns nil at the end.
    /// A file that breaks off (a row past the limit, a malformed stretch, a connection that drops, a database error)
    /// keeps the batches already written: their managers are linked and the import is audited with what went in,
    /// then the error is answered.
    func importCSV(reading next: () async throws -> ByteBuffer?, into client: Client) async throws -> Report {
        var run = ImportRun(service: self, client: client)
        var parser = CSV.Parser()
        var bytes = 0
        do {
            while let piece = try await next() {
                bytes += piece.readableBytes
                guard bytes <= Self.maxBytes else {
                    throw APIError.validation(["file": ["The file is larger than \(Self.maxBytes / 1_048_576) MB."]])
                }
                for row in parser.feed(piece.readableBytesView) { try await run.take(row) }
                if let failure = parser.failure { throw APIError.validation(["file": [failure]]) }
            }
            for row in parser.finish() { try await run.take(row) }
            // A batch that fails at the end is an interruption too: the batches written beside it are still counted,
            // linked and audited before the error is answered.
            return try await run.finish()
        } catch {
            _ = try? await run.finish(interrupted: true)
            throw error
        }
    }

    fileprivate struct Candidate {
        let line: Int
        let id: UUID
        let first: String, last: String, email: String
        let position: String?, department: String?
        let managerEmail: String?
    }

    /// The state of one import while its rows stream past.
    private struct ImportRun {
        let service: UserImportService
        let client: Client
        var header: [String]?
        var line = 1
        var batch: [(line: Int, row: [String])] = []
        var imported = 0
        var failed = 0
        var errors: [RowError] = []
        var importedHashes = Set<Int>()
        var managerLinks: [(line: Int, userID: UUID, managerEmail: String)] = []
        /// The batches being written while the next one is read and checked (the database and the parsing overlap),
        /// oldest first.
        var writing: [(candidates: [Candidate], emails: Set<String>, insert: Task<Set<String>, any Error>)] = []
        let batchesInFlight: Int

        init(service: UserImportService, client: Client) {
            self.service = service
            self.client = client
            self.batchesInFlight = max(1, service.writers)
        }

        var db: any Database { service.scope.db }

        mutating func take(_ row: [String]) async throws {
            guard header != nil else {
                let names = row.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
                let missing = ["first_name", "last_name", "email"].filter { !names.contains($0) }
                guard missing.isEmpty else {
                    throw APIError.validation(["file": ["The header row must name the columns \(UserImportService.columns.joined(separator: ",")); missing: \(missing.joined(separator: ", "))."]])
                }
                header = names
                return
            }
            line += 1
            guard line - 1 <= UserImportService.maxRows else {
                // The rows before are valid and the answer says they went in: the batch gathered so far is written.
                try await flush()
                throw APIError.validation(["file": ["At most \(UserImportService.maxRows) rows can be imported at once; the rows before row \(line) were imported."]])
            }
            batch.append((line, row))
            if batch.count >= UserImportService.batchSize { try await flush() }
        }

        /// Keeps the first `maxReportedErrors` failed rows by row number, whenever each was found.
        mutating func reject(_ line: Int, _ email: String?, _ details: [String: [String]]) {
            failed += 1
            errors.append(RowError(row: line, email: email, errors: details))
            if errors.count >= 2 * UserImportService.maxReportedErrors { trimErrors() }
        }

        mutating func trimErrors() {
            errors.sort { $0.row < $1.row }
            if errors.count > UserImportService.maxReportedErrors { errors.removeLast(errors.count - UserImportService.maxReportedErrors) }
        }

        func value(_ row: [String], _ column: String) -> String? {
            guard let index = header?.firstIndex(of: column), index < row.count else { return nil }
            return row[index]
        }

        /// Validates the rows gathered so far and starts writing them once the batch before has been written.
        mutating func flush() async throws {
            guard !batch.isEmpty else { return }
            var candidates: [Candidate] = []
            var inBatch = Set<String>()
            for (line, row) in batch {
                var errors = FieldErrors()
                let first = errors.required(value(row, "first_name"), field: "first_name", maxLength: 100)
                let last = errors.required(value(row, "last_name"), field: "last_name", maxLength: 100)
                let email = errors.email(value(row, "email"))
                let position = errors.optional(value(row, "position"), field: "position")
                let department = errors.optional(value(row, "department"), field: "department")
                let managerEmail = errors.email(value(row, "manager_email"), field: "manager_email", required: false)
                if let email, importedHashes.contains(email.hashValue) || inBatch.contains(email) {
                    errors.add("email", "The email appears more than once in the file.")
                }
                if let email, email == managerEmail { errors.add("manager_email", "A user cannot be their own manager.") }
                guard errors.isEmpty, let first, let last, let email else {
                    reject(line, email ?? value(row, "email"), errors.details)
                    continue
                }
                inBatch.insert(email)
                // Ids in file order (`UUID.timeOrdered()`): a batch lands at the right edge of the id indexes instead
                // of on a random page each (at a million people, most of an import's reads and writes of index pages).
                candidates.append(Candidate(line: line, id: UUID.timeOrdered(), first: first, last: last, email: email, position: position,
                                            department: department, managerEmail: managerEmail))
            }
            batch.removeAll(keepingCapacity: true)
            // A batch being written may hold an email of this one: it is a repeat only if that row went in, so those
            // batches are waited for first (rare: otherwise the two would race and the later row could win).
            if writing.contains(where: { !$0.emails.isDisjoint(with: inBatch) }) {
                var stored = Set<String>()
                while !writing.isEmpty { stored.formUnion(try await finishWriting()) }
                candidates.removeAll { candidate in
                    guard stored.contains(candidate.email) else { return false }
                    reject(candidate.line, candidate.email, ["email": ["The email appears more than once in the file."]])
                    return true
                }
            }
            guard !candidates.isEmpty else { return }
            if writing.count >= batchesInFlight { _ = try await finishWriting() }
            // Only what the write needs is captured: a copy of this run would copy its growing sets at every batch.
            let (rows, client, now, db) = (candidates, client, service.now, db)
            writing.append((candidates, Set(candidates.map(\.email)), Task { try await Self.insert(rows, into: client, now: now, on: db) }))
        }

        /// Waits for the oldest batch being written and counts it; returns the emails of that batch that went in.
        mutating func finishWriting() async throws -> Set<String> {
            guard !writing.isEmpty else { return [] }
            let (candidates, _, insert) = writing.removeFirst()
            let stored = try await insert.value
            for candidate in candidates {
                guard stored.contains(candidate.email) else {
                    reject(candidate.line, candidate.email, ["email": ["The email has already been taken."]])
                    continue
                }
                imported += 1
                importedHashes.insert(candidate.email.hashValue)
                if let managerEmail = candidate.managerEmail {
                    managerLinks.append((candidate.line, candidate.id, managerEmail))
                }
            }
            return stored
        }

        /// One insert of the whole batch, its rows bound column by column (`BoundRows`: one statement text for any
        /// batch, one FTS flush per batch on SQLite instead of one per statement); returns the emails that went in
        /// (the others were taken, before or meanwhile).
        static func insert(_ candidates: [Candidate], into client: Client, now: Date, on db: any Database) async throws -> Set<String> {
            // PostgreSQL keeps roles in an enum type, which a SELECT's text literal does not turn into by itself.
            let role = db.sql.dialect.name == "postgresql" ? "'company_user'::user_role" : "'company_user'"
            var rows = BoundRows(count: candidates.count, on: db)
            rows.add(candidates.map(\.id))
            rows.add(candidates.map(\.first))
            rows.add(candidates.map(\.last))
            rows.add(candidates.map(\.email))
            rows.add(candidates.map(\.position))
            rows.add(candidates.map(\.department))
            let table = rows.table
            // Not `rerunnable`: after a connection lost once the insert had committed, a second run would insert
            // nothing and report the batch's people as taken. `WHERE true`: SQLite would read `ON CONFLICT` as a
            // join's `ON` after a bare `FROM v`.
            let stored = try await db.plainRows("""
                WITH v(id, first_name, last_name, email, position, department) AS (\(table))
                INSERT INTO users (id, company_id, client_id, current_client_id, first_name, last_name, email, position,
                                   department, created_at, updated_at, locale, status, role, totp_enabled, failed_logins)
                SELECT v.id, \(bind: client.$company.id), \(bind: client.id!), \(bind: client.id!), v.first_name, v.last_name,
                       v.email, v.position, v.department, \(bind: now), \(bind: now), 'en', 'active', \(unsafeRaw: role), false, 0
                FROM v WHERE true
                ON CONFLICT (email) DO NOTHING RETURNING email
                """, prepared: true, rerunnable: false) { try $0.next(String.self) }
            return Set(stored)
        }

        /// Writes what is left, links managers and audits the import. `interrupted`: the file broke off; what was
        /// written stays and the audit entry says so.
        @discardableResult
        mutating func finish(interrupted: Bool = false) async throws -> Report {
            if !interrupted { try await flush() }
            // Batches already on their way are waited for either way: their rows are in (or not) and must be counted.
            // Once interrupted, a batch that fails as well changes nothing: what went in is still linked and audited.
            var failure: (any Error)?
            while !writing.isEmpty {
                do { _ = try await finishWriting() } catch { failure = failure ?? error }
            }
            if let failure, !interrupted { throw failure }
            guard header != nil || interrupted else { throw APIError.validation(["file": ["The CSV file is empty."]]) }
            try await linkManagers()
            let client = self.client
            let (imported, failed) = (self.imported, self.failed)
            guard imported > 0 || !interrupted else { return Report(totalRows: line - 1, imported: 0, failed: failed, errors: []) }
            var details: [String: JSONValue] = ["imported": .number(Double(imported)), "failed": .number(Double(failed))]
            if interrupted { details["interrupted"] = .bool(true) }
            try await AuditService(db: db, now: service.now).record(
                AuditEvent("user.imported", target: ("client", client.id), companyID: client.$company.id, clientID: client.id,
                           details: details),
                by: service.actor)
            trimErrors()
            return Report(totalRows: line - 1, imported: imported, failed: failed,
                          errors: errors, errorsTruncated: failed > errors.count ? true : nil)
        }

        /// Sets each named manager (someone of the client, imported or not). Rows whose manager is nobody there are
        /// taken back out and reported; people who named one of those as manager keep their place without a manager.
        /// Taken once: a finish that fails after linking and is finished again as interrupted does not link twice.
        mutating func linkManagers() async throws {
            let links = managerLinks
            managerLinks = []
            guard !links.isEmpty else { return }
            var unresolved: [(line: Int, userID: UUID)] = []
            for start in stride(from: 0, to: links.count, by: 500) {
                let slice = links[start..<min(start + 500, links.count)]
                let managers = try await db.sql.raw("""
                    SELECT id, email FROM users WHERE client_id = \(bind: client.id!) AND \(unsafeRaw: User.notDeleted)
                      AND email IN (\(binds: Array(Set(slice.map(\.managerEmail)))))
                    """).all()
                var byEmail: [String: UUID] = [:]
                for row in managers { byEmail[try row.decode(column: "email", as: String.self)] = try row.decode(column: "id", as: UUID.self) }
                let found = byEmail
                try await db.transaction { db in
                    for link in slice {
                        guard let managerID = found[link.managerEmail] else { continue }
                        try await db.sql.raw("""
                            UPDATE users SET manager_id = \(bind: managerID), updated_at = \(bind: Date()) WHERE id = \(bind: link.userID)
                            """).run()
                    }
                }
                unresolved += slice.filter { byEmail[$0.managerEmail] == nil }.map { ($0.line, $0.userID) }
            }
            guard !unresolved.isEmpty else { return }
            var emails: [UUID: String] = [:]
            for start in stride(from: 0, to: unresolved.count, by: 500) {
                let ids = unresolved[start..<min(start + 500, unresolved.count)].map(\.userID)
                for row in try await db.sql.raw("SELECT id, email FROM users WHERE id IN (\(binds: ids))").all() {
                    emails[try row.decode(column: "id", as: UUID.self)] = try row.decode(column: "email", as: String.self)
                }
                try await db.transaction { db in
                    try await db.sql.raw("UPDATE users SET manager_id = NULL, updated_at = \(bind: Date()) WHERE manager_id IN (\(binds: ids))").run()
                    try await db.sql.raw("DELETE FROM users WHERE id IN (\(binds: ids))").run()
                }
            }
            imported -= unresolved.count
            for link in unresolved {
                reject(link.line, emails[link.userID], ["manager_email": ["No user with this email in the organisation or the file."]])
            }
        }
    }
}

extension Application {
    /// Import batches written at once: two on PostgreSQL when the request's event loop has connections to spare for
    /// other requests meanwhile (four or more), otherwise one. SQLite has one writer.
    var importWriters: Int {
        guard case .postgres = settings.database else { return 1 }
        return databaseConnectionsPerLoop >= 4 ? 2 : 1
    }
}
