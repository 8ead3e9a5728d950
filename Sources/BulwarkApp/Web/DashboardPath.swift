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
    static let learn = "/learn"
    static let team = "/team"
    static let modules = "/modules"
    static let campaigns = "/campaigns"
    static let campaignsNew = "/campaigns/new"
    static let phishing = "/phishing"
    static let phishingTemplates = "/phishing/templates"

    static func phishingCampaign(_ id: String) -> String { "/phishing/campaigns/\(id)" }
    static func phishingSimulation(_ id: String) -> String { "/phishing/simulations/\(id)" }
    static func phishingPreview(_ id: String) -> String { "/api/v1/phishing/templates/\(id)/preview" }

    static func assignment(_ id: String) -> String { "/learn/\(id)" }
    static func lessonDone(_ id: String, _ lessonID: String) -> String { "/learn/\(id)/lessons/\(lessonID)" }
    static func quiz(_ id: String) -> String { "/learn/\(id)/quiz" }
    static func certificate(_ id: String) -> String { "/learn/\(id)/certificate" }
    static func moduleCopy(_ id: String) -> String { "/modules/\(id)/copy" }
    static func module(_ id: String) -> String { "/modules/\(id)" }
    static func campaign(_ id: String) -> String { "/campaigns/\(id)" }

    static func userEdit(_ id: String) -> String { "/users/\(id)/edit" }
    static func user(_ id: String) -> String { "/users/\(id)" }
    static func userDeactivate(_ id: String) -> String { "/users/\(id)/deactivate" }
    static func apiKeyRevoke(_ id: String) -> String { "/api-keys/\(id)/revoke" }
}
