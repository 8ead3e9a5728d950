import Vapor

/// Who did something, from where. Built from the request, or `.system` for commands and jobs.
struct AuditActor: Sendable {
    var userID: UUID?
    var email: String?
    var ip: String?
    var userAgent: String?

    static let system = AuditActor(userID: nil, email: "system", ip: nil, userAgent: nil)
}

/// A change to record.
struct AuditEvent: Sendable {
    var action: String
    var targetType: String?
    var targetID: String?
    var companyID: UUID?
    var clientID: UUID?
    var details: [String: JSONValue]?

    init(_ action: String, target: (type: String, id: UUID?)? = nil, companyID: UUID? = nil, clientID: UUID? = nil,
         details: [String: JSONValue]? = nil) {
        self.action = action
        self.targetType = target?.type
        self.targetID = target?.id?.lowercasedString
        self.companyID = companyID
        self.clientID = clientID
        self.details = details
    }
}

extension Request {
    var auditActor: AuditActor {
        let principal = auth.get(Principal.self)
        return AuditActor(userID: principal?.userID, email: principal?.user.email, ip: clientIP,
                          userAgent: headers.first(name: .userAgent))
    }
}

/// Entries written through `POST /api/v1/audit-logs` live under `custom.`, a namespace the server never writes to, so a
/// client can never forge one of the server's own actions (`auth.login`, `user.erased`, ...).
enum AuditNamespace {
    static let customPrefix = "custom."

    static func custom(_ action: String) -> String {
        action.hasPrefix(customPrefix) ? action : customPrefix + action
    }
}
