import Crypto
import Fluent
import SQLKit
import Vapor

/// Appends to and reads the hash-chained audit log.
struct AuditService: Sendable {
    let db: any Database
    let now: Date

    /// Appends one entry. Call inside the transaction of the change it records, so both land or neither does.
    @discardableResult
    func record(_ event: AuditEvent, by actor: AuditActor) async throws -> AuditEntry {
        let chainKey = event.clientID.map { "client:\($0)" } ?? event.companyID.map { "company:\($0)" } ?? "system"
        let sql = db.sql
        try await sql.raw("""
            INSERT INTO audit_chain_heads (chain_key, seq, hash) VALUES (\(bind: chainKey), 0, '')
            ON CONFLICT (chain_key) DO NOTHING
            """).run()
        // The update takes the chain's row lock (PostgreSQL) or the write lock (SQLite) before reading the head,
        // so concurrent appends to one chain queue up instead of forking it.
        guard let head = try await sql.raw("""
            UPDATE audit_chain_heads SET seq = seq + 1 WHERE chain_key = \(bind: chainKey) RETURNING seq, hash
            """).first() else { throw APIError.internalError }
        let entry = AuditEntry()
        entry.chainKey = chainKey
        entry.seq = try head.decode(column: "seq", as: Int.self)
        entry.prevHash = try head.decode(column: "hash", as: String.self)
        entry.companyID = event.companyID
        entry.clientID = event.clientID
        entry.actorID = actor.userID
        entry.actorEmail = actor.email
        entry.action = event.action
        entry.targetType = event.targetType
        entry.targetID = event.targetID
        entry.ip = actor.ip
        entry.userAgent = actor.userAgent.map { String($0.prefix(500)) }
        entry.details = event.details.map { JSONValue.canonical($0) }
        entry.occurredAtMs = Int64((now.timeIntervalSince1970 * 1000).rounded())
        entry.createdAt = Date(timeIntervalSince1970: Double(entry.occurredAtMs) / 1000)
        entry.hash = Self.hash(entry.chainedText)
        try await entry.create(on: db)
        try await sql.raw("UPDATE audit_chain_heads SET hash = \(bind: entry.hash) WHERE chain_key = \(bind: chainKey)").run()
        return entry
    }

    static func hash(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    struct Filters: Sendable {
        var actor: String?
        var action: String?
        var target: String?
        var from: Date?
        var to: Date?
    }

    func list(clientID: UUID, filters: Filters, page: PageParams) async throws -> (items: [AuditEntry], meta: PaginationMeta) {
        let query = AuditEntry.query(on: db).filter(\.$clientID == clientID)
        if let actor = filters.actor {
            if let id = UUID(uuidString: actor) { query.filter(\.$actorID == id) }
            else { query.filter(\.$actorEmail == actor.lowercased()) }
        }
        if let action = filters.action {
            if action.hasSuffix(".*") { query.filter(\.$action, .custom("LIKE"), String(action.dropLast()) + "%") }
            else { query.filter(\.$action == action) }
        }
        if let target = filters.target {
            query.group(.or) { $0.filter(\.$targetID == target).filter(\.$targetType == target) }
        }
        if let from = filters.from { query.filter(\.$createdAt >= from) }
        if let to = filters.to { query.filter(\.$createdAt <= to) }
        return try await query.sort(\.$createdAt, .descending).sort(\.$seq, .descending).pageOfModels(page)
    }

    struct BrokenLink: Sendable, CustomStringConvertible {
        let chainKey: String
        let seq: Int
        let entryID: UUID?
        let reason: String
        var description: String { "chain \(chainKey): entry #\(seq) (\(entryID?.uuidString ?? "?")) \(reason)" }
    }

    /// Walks every chain in order and returns the first broken link, or nil when all verify.
    func verify() async throws -> (checked: Int, broken: BrokenLink?) {
        let keys = try await db.sql.raw("SELECT DISTINCT chain_key FROM audit_entries ORDER BY chain_key").all()
            .map { try $0.decode(column: "chain_key", as: String.self) }
        var checked = 0
        for key in keys {
            var expectedSeq = 1
            var previousHash = ""
            var lastSeq = 0
            while true {
                let batch = try await AuditEntry.query(on: db).filter(\.$chainKey == key).filter(\.$seq > lastSeq)
                    .sort(\.$seq).limit(1000).all()
                if batch.isEmpty { break }
                for entry in batch {
                    checked += 1
                    if entry.seq != expectedSeq {
                        return (checked, BrokenLink(chainKey: key, seq: expectedSeq, entryID: entry.id,
                                                    reason: "is missing (next present is #\(entry.seq))"))
                    }
                    if entry.prevHash != previousHash {
                        return (checked, BrokenLink(chainKey: key, seq: entry.seq, entryID: entry.id,
                                                    reason: "does not point at the previous entry's hash"))
                    }
                    if Self.hash(entry.chainedText) != entry.hash {
                        return (checked, BrokenLink(chainKey: key, seq: entry.seq, entryID: entry.id,
                                                    reason: "was altered (its hash no longer matches its content)"))
                    }
                    previousHash = entry.hash
                    expectedSeq += 1
                    lastSeq = entry.seq
                }
            }
        }
        return (checked, nil)
    }
}

extension Request {
    var audit: AuditService { AuditService(db: db, now: now) }
}
