import Crypto
import Fluent
import Foundation
import NIOConcurrencyHelpers
import Vapor

/// The key that authenticates the audit chains' heads, derived from the master key, which never enters the database.
/// Someone who can write to the database but does not hold the key cannot rebuild a head after deleting or rewriting
/// entries, so truncation and rewriting stay detectable.
///
/// Every service that records an entry would otherwise need it as a parameter, so it is installed once per process by
/// `configure` (one Bulwark application per process; tests configure several, all with the same master key). A task
/// may bind another key for what it runs (the upgrade migration, a test checking that a wrong key is caught).
enum AuditSeal {
    @TaskLocal static var key: SymmetricKey?
    private static let installed = NIOLockedValueBox<SymmetricKey?>(nil)

    static func install(_ key: SymmetricKey) {
        installed.withLockedValue { $0 = key }
    }

    static func derive(from masterKey: SymmetricKey) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: masterKey, info: Data("bulwark audit chain heads v1".utf8), outputByteCount: 32)
    }

    static func currentKey() throws -> SymmetricKey {
        guard let key = key ?? installed.withLockedValue({ $0 }) else {
            // A programming error: audit entries recorded before `configure` installed the key.
            throw AuditChainError("the audit sealing key is not installed")
        }
        return key
    }

    /// The MAC of a chain's head: its key, its last sequence number and its last entry's hash.
    static func mac(chainKey: String, seq: Int, hash: String, key: SymmetricKey) -> String {
        let text = ["audit-head", chainKey, String(seq), hash].joined(separator: "\u{1F}")
        return Data(HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: key)).hexString
    }

    static func isValid(_ mac: String?, chainKey: String, seq: Int, hash: String, key: SymmetricKey) -> Bool {
        guard let mac else { return false }
        let expected = Self.mac(chainKey: chainKey, seq: seq, hash: hash, key: key)
        return mac.utf8.count == expected.utf8.count && zip(mac.utf8, expected.utf8).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

struct AuditChainError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension Application {
    private struct AuditSealKeyStorage: StorageKey { typealias Value = SymmetricKey }

    var auditSealKey: SymmetricKey {
        get { storage[AuditSealKeyStorage.self] ?? AuditSeal.derive(from: secretBox.key) }
        set { storage[AuditSealKeyStorage.self] = newValue }
    }
}

/// Seals the heads of chains written before heads were authenticated, and registers every existing chain in the system
/// chain so that deleting a whole chain is detectable. Runs once, at the upgrade; chains verify afterwards as before.
struct SealAuditChains: AsyncMigration {
    let key: SymmetricKey

    func prepare(on database: any Database) async throws {
        try await database.schema(AuditChainHead.schema).field("mac", .string).update()
        try await Self.sealLegacyChains(on: database, key: key)
    }

    /// Heads without a MAC are the ones written before this migration: seal them and register their chains. Sealing is a
    /// trust decision made once, at the upgrade: if chains were already registered (the upgrade happened), heads that
    /// lost their MACs were tampered with, and sealing them would launder that. Refuse and say so.
    static func sealLegacyChains(on database: any Database, key: SymmetricKey) async throws {
        let heads = try await AuditChainHead.query(on: database).filter(\.$mac == nil).sort(\.$id).all()
        guard !heads.isEmpty else { return }
        if try await AuditEntry.query(on: database).filter(\.$action == AuditService.chainOpened).first() != nil {
            throw ConfigurationError("""
                Audit chain heads without a MAC were found after their sealing: the audit log was tampered with. \
                Run `bulwark audit-verify` and restore the database from a backup; Bulwark will not reseal it.
                """)
        }
        database.logger.warning("Sealing \(heads.count) audit chain(s) written before heads were authenticated (once, at this upgrade).")
        for head in heads {
            head.mac = AuditSeal.mac(chainKey: head.id!, seq: head.seq, hash: head.hash, key: key)
            try await head.save(on: database)
        }
        try await AuditSeal.$key.withValue(key) {
            for head in heads where head.id != AuditService.systemChain {
                try await AuditService(db: database, now: Date()).registerChain(head.id!)
            }
        }
    }

    func revert(on database: any Database) async throws {
        try await database.schema(AuditChainHead.schema).deleteField("mac").update()
    }
}
