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
        // Eight bytes per draw from the system generator (a `getrandom` call each): a byte per draw was 24 system
        // calls per tracking token.
        var generator = SystemRandomNumberGenerator()
        var random: [UInt8] = []
        random.reserveCapacity(bytes + 7)
        while random.count < bytes { withUnsafeBytes(of: generator.next()) { random += $0 } }
        return base64URL(random.prefix(bytes))
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    /// Unpadded base64url. Encoded directly: Foundation's encoder followed by three `replacingOccurrences` went through
    /// `NSString` and was a twelfth of a 100,000-person launch's CPU.
    static func base64URL(_ bytes: some Collection<UInt8>) -> String {
        let bytes = Array(bytes)
        var out = [UInt8]()
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)]
            let value = chunk.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (16 - 8 * UInt32($1.offset)) }
            for position in 0...chunk.count { out.append(alphabet[Int(value >> (18 - 6 * UInt32(position)) & 63)]) }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Each byte's value in the alphabet, 255 for a byte outside it.
    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 255, count: 256)
        for (value, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(value) }
        return table
    }()

    /// Whether `byte` is a digit of the URL-safe alphabet tokens are written in.
    static func isBase64URLDigit(_ byte: UInt8) -> Bool { values[Int(byte)] != 255 }

    /// The bytes of unpadded (or padded) base64url text, or nil if it is not base64url. Read directly, like
    /// `base64URL`: the click route reads a campaign id from every token.
    static func bytes(base64URL text: some StringProtocol) -> Data? {
        var digits = Array(text.utf8)
        while digits.last == UInt8(ascii: "=") { digits.removeLast() }
        guard digits.count % 4 != 1 else { return nil }
        var out = Data(capacity: digits.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for digit in digits {
            let value = values[Int(digit)]
            guard value != 255 else { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        return out
    }

    static func sha256Hex(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).hexString
    }
}
