import Fluent
import Foundation
import SQLKit

/// Checks every audit chain: each entry's hash and link, each chain against its authenticated head (so removing the
/// newest entries shows), and the set of chains against the registrations in the system chain (so removing a whole
/// chain shows). Needs the sealing key, which the database does not hold.
struct AuditVerifier: Sendable {
    let db: any Database

    struct BrokenLink: Sendable, CustomStringConvertible {
        let chainKey: String
        let seq: Int
        let entryID: UUID?
        let reason: String
        var description: String { "chain \(chainKey): entry #\(seq) (\(entryID?.uuidString ?? "?")) \(reason)" }
    }

    struct Result: Sendable {
        let checked: Int
        let broken: BrokenLink?
    }

    func verify() async throws -> Result {
        let key = try AuditSeal.currentKey()
        let heads = Dictionary(uniqueKeysWithValues: try await AuditChainHead.query(on: db).all().map { ($0.id!, $0) })
        let entryChains = try await db.sql.raw("SELECT DISTINCT chain_key FROM audit_entries").all()
            .map { try $0.decode(column: "chain_key", as: String.self) }
        if heads.isEmpty, entryChains.isEmpty {
            // Nothing at all is only right for an installation that never recorded anything.
            if try await db.sql.raw("SELECT 1 AS yes FROM users LIMIT 1").first() != nil {
                return Result(checked: 0, broken: BrokenLink(chainKey: AuditService.systemChain, seq: 0, entryID: nil,
                                                             reason: "is missing, with every other chain, although the installation has users"))
            }
        }
        var checked = 0
        var registered = Set<String>()
        for chainKey in Set(entryChains).union(heads.keys).sorted() {
            guard let head = heads[chainKey] else {
                return Result(checked: checked, broken: BrokenLink(chainKey: chainKey, seq: 0, entryID: nil,
                                                                   reason: "has entries but its head is missing"))
            }
            guard AuditSeal.isValid(head.mac, chainKey: chainKey, seq: head.seq, hash: head.hash, key: key) else {
                return Result(checked: checked, broken: BrokenLink(chainKey: chainKey, seq: head.seq, entryID: nil,
                                                                   reason: "is the head, and it is not authentic (rewritten or rolled back)"))
            }
            let walked = try await walk(chainKey, head: head) { entry in
                if chainKey == AuditService.systemChain, entry.action == AuditService.chainOpened, let target = entry.targetID {
                    registered.insert(target)
                }
            }
            checked += walked.checked
            if let broken = walked.broken { return Result(checked: checked, broken: broken) }
        }
        let chains = Set(heads.keys).subtracting([AuditService.systemChain])
        if let unregistered = chains.subtracting(registered).sorted().first {
            return Result(checked: checked, broken: BrokenLink(chainKey: unregistered, seq: 0, entryID: nil,
                                                               reason: "was never registered in the system chain"))
        }
        if let missing = registered.subtracting(chains).sorted().first {
            return Result(checked: checked, broken: BrokenLink(chainKey: missing, seq: 0, entryID: nil,
                                                               reason: "was deleted (registered in the system chain, now absent)"))
        }
        return Result(checked: checked, broken: nil)
    }

    /// Walks one chain in order, in pages, and compares where it ends with its head.
    private func walk(_ chainKey: String, head: AuditChainHead, visit: (AuditEntry) -> Void) async throws -> Result {
        var checked = 0
        var previousHash = ""
        var lastSeq = 0
        while true {
            let batch = try await AuditEntry.query(on: db).filter(\.$chainKey == chainKey).filter(\.$seq > lastSeq)
                .sort(\.$seq).limit(1000).all()
            if batch.isEmpty { break }
            for entry in batch {
                checked += 1
                let expectedSeq = lastSeq + 1
                if entry.seq != expectedSeq {
                    return Result(checked: checked, broken: BrokenLink(chainKey: chainKey, seq: expectedSeq, entryID: entry.id,
                                                                       reason: "is missing (next present is #\(entry.seq))"))
                }
                if entry.prevHash != previousHash {
                    return Result(checked: checked, broken: BrokenLink(chainKey: chainKey, seq: entry.seq, entryID: entry.id,
                                                                       reason: "does not point at the previous entry's hash"))
                }
                if AuditService.hash(entry.chainedText) != entry.hash {
                    return Result(checked: checked, broken: BrokenLink(chainKey: chainKey, seq: entry.seq, entryID: entry.id,
                                                                       reason: "was altered (its hash no longer matches its content)"))
                }
                visit(entry)
                previousHash = entry.hash
                lastSeq = entry.seq
            }
        }
        if lastSeq != head.seq || previousHash != head.hash {
            let reason = lastSeq < head.seq
                ? "and the entries after it were removed (the head says #\(head.seq))"
                : "does not match the head (#\(head.seq))"
            return Result(checked: checked, broken: BrokenLink(chainKey: chainKey, seq: lastSeq, entryID: nil, reason: reason))
        }
        return Result(checked: checked, broken: nil)
    }
}
