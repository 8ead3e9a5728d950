import Crypto
import Foundation

/// RFC 6238 time-based one-time passwords (HMAC-SHA1, 30 s steps, 6 digits), as authenticator apps expect.
enum TOTP {
    static let step: TimeInterval = 30
    static let digits = 6

    static func makeSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        return Base32.encode((0..<20).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    static func code(secret: String, at date: Date) -> String? {
        guard let key = Base32.decode(secret) else { return nil }
        var counter = UInt64(date.timeIntervalSince1970 / step).bigEndian
        let message = withUnsafeBytes(of: &counter) { Data($0) }
        let mac = Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: SymmetricKey(data: key)))
        let offset = Int(mac[mac.count - 1] & 0x0f)
        let binary = (UInt32(mac[offset] & 0x7f) << 24) | (UInt32(mac[offset + 1]) << 16)
            | (UInt32(mac[offset + 2]) << 8) | UInt32(mac[offset + 3])
        let value = binary % 1_000_000
        return String(format: "%06u", value)
    }

    /// Accepts the current step and one either side, for clock drift between phone and server.
    static func verify(code: String, secret: String, at date: Date) -> Bool {
        matchingStep(code: code, secret: secret, at: date) != nil
    }

    /// The time step the code belongs to, so a caller can accept each step at most once (no replay).
    static func matchingStep(code: String, secret: String, at date: Date) -> Int64? {
        let trimmed = code.filter { !$0.isWhitespace }
        guard trimmed.count == digits else { return nil }
        let current = Int64(date.timeIntervalSince1970 / step)
        return (-1...1).lazy.map { current + Int64($0) }.first { candidate in
            Self.code(secret: secret, at: Date(timeIntervalSince1970: Double(candidate) * step)) == trimmed
        }
    }

    static func provisioningURI(secret: String, account: String, issuer: String = "Bulwark") -> String {
        let label = "\(issuer):\(account)".addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? account
        return "otpauth://totp/\(label)?secret=\(secret)&issuer=\(issuer)&algorithm=SHA1&digits=6&period=30"
    }
}

enum Base32 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")

    static func encode(_ bytes: [UInt8]) -> String {
        var output = ""
        var buffer = 0, bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | Int(byte)
            bits += 8
            while bits >= 5 {
                output.append(alphabet[(buffer >> (bits - 5)) & 31])
                bits -= 5
            }
        }
        if bits > 0 { output.append(alphabet[(buffer << (5 - bits)) & 31]) }
        return output
    }

    static func decode(_ text: String) -> [UInt8]? {
        var output: [UInt8] = []
        var buffer = 0, bits = 0
        for character in text.uppercased() where character != "=" && !character.isWhitespace {
            guard let value = alphabet.firstIndex(of: character) else { return nil }
            buffer = (buffer << 5) | value
            bits += 5
            if bits >= 8 {
                output.append(UInt8((buffer >> (bits - 8)) & 0xff))
                bits -= 8
            }
        }
        return output
    }
}
