import Crypto
import Vapor

/// Synchroniser tokens bound to the session: HMAC of the session id under the instance secret, so no state is stored
/// and every Bulwark process computes the same token.
enum CSRF {
    static let field = "_csrf"

    static func token(for principal: Principal, app: Application) -> String {
        guard case let .session(id) = principal.credential else { return "" }
        let key = SymmetricKey(data: SHA256.hash(data: Data(("csrf:" + app.csrfSecret).utf8)))
        let mac = HMAC<SHA256>.authenticationCode(for: Data(id.uuidString.utf8), using: key)
        return Data(mac).base64EncodedString()
    }

    /// Throws 403 unless the form carries this session's token.
    static func verify(_ req: Request, principal: Principal) throws {
        struct Form: Decodable { var _csrf: String? }
        let sent = (try? req.content.decode(Form.self))?._csrf ?? ""
        guard matches(sent, principal: principal, app: req.application) else {
            throw APIError.forbidden("The form has expired; reload the page and try again.")
        }
    }

    /// Constant-time comparison with this session's token.
    static func matches(_ sent: String, principal: Principal, app: Application) -> Bool {
        let expected = token(for: principal, app: app)
        return !expected.isEmpty && sent.utf8.count == expected.utf8.count
            && zip(sent.utf8, expected.utf8).reduce(0, { $0 | ($1.0 ^ $1.1) }) == 0
    }
}

extension Application {
    private struct CSRFSecretKey: StorageKey { typealias Value = String }

    /// The instance secret (BULWARK_SECRET_KEY or the generated one), set in configure.
    var csrfSecret: String {
        get { storage[CSRFSecretKey.self] ?? "" }
        set { storage[CSRFSecretKey.self] = newValue }
    }
}
