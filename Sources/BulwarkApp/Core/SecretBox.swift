import Crypto
import Vapor

/// Encrypts secrets at rest (TOTP seeds now; SMTP passwords, integration and AI keys later) with AES-GCM.
struct SecretBox: Sendable {
    let key: SymmetricKey

    func seal(_ plaintext: String) throws -> String {
        let box = try AES.GCM.seal(Data(plaintext.utf8), using: key)
        guard let combined = box.combined else { throw APIError.internalError }
        return combined.base64EncodedString()
    }

    func open(_ sealed: String) throws -> String {
        guard let data = Data(base64Encoded: sealed) else { throw APIError.internalError }
        let box = try AES.GCM.SealedBox(combined: data)
        return String(decoding: try AES.GCM.open(box, using: key), as: UTF8.self)
    }

    /// Key from BULWARK_MASTER_KEY, else from the key file, which is created (mode 0600) only when it does not exist.
    /// An existing file is never overwritten: every sealed secret depends on it.
    static func load(settings: Settings, logger: Logger) throws -> SecretBox {
        if let encoded = settings.masterKey {
            guard let key = decodeKey(encoded) else {
                throw ConfigurationError("BULWARK_MASTER_KEY must be 32 bytes, base64-encoded.")
            }
            return SecretBox(key: key)
        }
        if case .sqliteMemory = settings.database {
            return SecretBox(key: SymmetricKey(size: .bits256))
        }
        let file = MasterKeyFile(path: settings.masterKeyFile)
        if let key = try file.readIfPresent() { return SecretBox(key: key) }
        let key = SymmetricKey(size: .bits256)
        if try file.createExclusively(key) {
            logger.notice("Created master key file \(file.path); keep it with the database backups.")
            return SecretBox(key: key)
        }
        // Another process created it between our read and our create: use theirs.
        guard let existing = try file.readIfPresent() else {
            throw ConfigurationError("The master key file \(file.path) could not be read after it was created.")
        }
        return SecretBox(key: existing)
    }

    static func decodeKey(_ text: String) -> SymmetricKey? {
        guard let data = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)), data.count == 32 else {
            return nil
        }
        return SymmetricKey(data: data)
    }
}

extension Application {
    private struct SecretBoxKey: StorageKey { typealias Value = SecretBox }

    var secretBox: SecretBox {
        get { storage[SecretBoxKey.self]! }
        set { storage[SecretBoxKey.self] = newValue }
    }
}

enum RandomToken {
    /// URL-safe random token of `bytes` random bytes (≥ 16 bytes = 128 bits).
    static func make(bytes: Int = 32) -> String {
        var generator = SystemRandomNumberGenerator()
        let raw = (0..<bytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return Data(raw).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func sha256Hex(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).hexString
    }
}
