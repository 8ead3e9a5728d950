/// Every dashboard URL, so links in views and registered routes come from one place.
enum DashboardPath {
    static let home = "/dashboard"
    static let login = "/login"
    static let loginTOTP = "/login/totp"
    static let logout = "/logout"
    static let profile = "/profile"
    static let profilePassword = "/profile/password"
    static let profileTOTPSetup = "/profile/totp/setup"
    static let profileTOTPEnable = "/profile/totp/enable"
    static let users = "/users"
    static let usersNew = "/users/new"
    static let usersImport = "/users/import"
    static let apiKeys = "/api-keys"

    static func userEdit(_ id: String) -> String { "/users/\(id)/edit" }
    static func user(_ id: String) -> String { "/users/\(id)" }
    static func userDeactivate(_ id: String) -> String { "/users/\(id)/deactivate" }
    static func apiKeyRevoke(_ id: String) -> String { "/api-keys/\(id)/revoke" }
}
