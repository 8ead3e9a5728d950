import Crypto
import Fluent
import SQLKit
import Vapor

/// Appends to and reads the hash-chained audit log.
struct AuditService: Sendable {
    let db: any Database
    let now: Date

    static let systemChain = "system"

    /// Appends one entry. Call inside the transaction of the change it records, so both land or neither does.
    @discardableResult
    func record(_ event: AuditEvent, by actor: AuditActor) async throws -> AuditEntry {
        let key = try AuditSeal.currentKey()
        let chainKey = event.clientID.map { "client:\($0)" } ?? event.companyID.map { "company:\($0)" } ?? Self.systemChain
        let sql = db.sql
        // Writing first takes SQLite's write lock at once (a read first would fail to upgrade under concurrency).
        let opened = try await sql.raw("""
            INSERT INTO audit_chain_heads (chain_key, seq, hash, mac)
            VALUES (\(bind: chainKey), 0, '', \(bind: AuditSeal.mac(chainKey: chainKey, seq: 0, hash: "", key: key)))
            ON CONFLICT (chain_key) DO NOTHING RETURNING chain_key
            """).first() != nil
        if opened, chainKey != Self.systemChain {
            // A new chain is registered in the system chain, so deleting a whole chain cannot go unnoticed.
            try await registerChain(chainKey)
        }
        // The update takes the chain's row lock (PostgreSQL) or the write lock (SQLite) before reading the head,
        // so concurrent appends to one chain queue up instead of forking it.
        guard let head = try await sql.raw("""
            UPDATE audit_chain_heads SET seq = seq + 1 WHERE chain_key = \(bind: chainKey) RETURNING seq, hash, mac
            """).first() else { throw APIError.internalError }
        let previousSeq = try head.decode(column: "seq", as: Int.self) - 1
        let previousHash = try head.decode(column: "hash", as: String.self)
        // Appending to a head that is not authentic would launder a truncated or rewritten chain: refuse, loudly.
        guard AuditSeal.isValid(try head.decode(column: "mac", as: String?.self), chainKey: chainKey, seq: previousSeq,
                                hash: previousHash, key: key) else {
            throw AuditChainError("the head of audit chain \(chainKey) is not authentic; run `bulwark audit-verify`")
        }
        let entry = AuditEntry()
        entry.chainKey = chainKey
        entry.seq = previousSeq + 1
        entry.prevHash = previousHash
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
        try await sql.raw("""
            UPDATE audit_chain_heads SET hash = \(bind: entry.hash),
                mac = \(bind: AuditSeal.mac(chainKey: chainKey, seq: entry.seq, hash: entry.hash, key: key))
            WHERE chain_key = \(bind: chainKey)
            """).run()
        return entry
    }

    /// Records in the system chain that `chainKey` exists.
    func registerChain(_ chainKey: String) async throws {
        var event = AuditEvent(AuditService.chainOpened)
        event.targetType = "audit_chain"
        event.targetID = chainKey
        try await record(event, by: .system)
    }

    static let chainOpened = "audit.chain_opened"

    static func hash(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).hexString
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
            if let id = UUID(uuidString: actor) { query.filter(\.$actorID == id) }  // parsed: any case
            else { query.filter(\.$actorEmail == actor.lowercased()) }
        }
        if let action = filters.action {
            if action.hasSuffix(".*") { query.filter(\.$action, .custom("LIKE"), String(action.dropLast()) + "%") }
            else { query.filter(\.$action == action) }
        }
        if let target = filters.target {
            // Identifiers match in any case (entries written before identifiers went out lowercase hold capitals).
            query.group(.or) {
                $0.filter(\.$targetID ~~ Array(Set([target, target.lowercased(), target.uppercased()]))).filter(\.$targetType == target)
            }
        }
        if let from = filters.from { query.filter(\.$createdAt >= from) }
        if let to = filters.to { query.filter(\.$createdAt <= to) }
        return try await query.sort(\.$createdAt, .descending).sort(\.$seq, .descending).pageOfModels(page)
    }
}

extension Request {
    var audit: AuditService { AuditService(db: db, now: now) }
}
