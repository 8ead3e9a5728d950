import Vapor

/// What the layout needs on every page: who is signed in, the navigation their role reaches, the CSRF token.
struct Layout: Encodable {
    struct NavItem: Encodable { let title: String; let href: String; let active: Bool }

    let title: String
    let userName: String
    let roleName: String
    let csrf: String
    let nav: [NavItem]
    let logoutPath = DashboardPath.logout
    let notice: String?
    /// Seconds after which the page reloads itself (live progress without JavaScript).
    var refresh: Int?

    init(title: String, principal: Principal, req: Request, notice: String? = nil) {
        self.title = title
        userName = principal.user.fullName
        roleName = principal.role.displayName
        csrf = CSRF.token(for: principal, app: req.application)
        let current = req.url.path
        var items: [(String, String)] = [("Home", DashboardPath.home)]
        if principal.has(.takeTraining) { items.append(("Learn", DashboardPath.learn)) }
        if principal.has(.viewTeam) { items.append(("Team", DashboardPath.team)) }
        if principal.has(.manageTraining) {
            items.append(("Modules", DashboardPath.modules))
            items.append(("Campaigns", DashboardPath.campaigns))
        }
        if principal.has(.managePhishing) { items.append(("Phishing", DashboardPath.phishing)) }
        if principal.has(.viewUsers) { items.append(("Users", DashboardPath.users)) }
        if principal.has(.manageApiKeys) { items.append(("API keys", DashboardPath.apiKeys)) }
        items.append(("Profile", DashboardPath.profile))
        nav = items.map { NavItem(title: $0.0, href: $0.1, active: current == $0.1 || current.hasPrefix($0.1 + "/")) }
        self.notice = notice ?? req.queryText("notice").flatMap(Notices.text)
    }
}

/// Fixed notices shown after a redirect; only known keys are shown, never text from the URL.
enum Notices {
    static func text(_ key: String) -> String? {
        [
            "user_created": "User created.",
            "user_updated": "User updated.",
            "user_deactivated": "User deactivated.",
            "password_changed": "Password changed. Other sessions were signed out.",
            "totp_enabled": "Two-factor sign-in is on.",
            "key_revoked": "API key revoked.",
            "lesson_done": "Lesson marked as done.",
            "module_copied": "Your own copy is ready to edit through the API or use in campaigns.",
            "campaign_created": "Campaign created.",
            "phishing_launched": "Campaign launched: messages go out over the sending window.",
            "template_created": "Template saved.",
        ][key]
    }
}

/// Field errors in a shape Leaf can loop over.
struct FormError: Encodable {
    let field: String
    let message: String

    static func from(_ error: any Error) -> [FormError]? {
        guard let apiError = error as? APIError, apiError.status.code < 500 else { return nil }
        guard let details = apiError.details else { return [FormError(field: "", message: apiError.message)] }
        return details.keys.sorted().flatMap { key in details[key]!.map { FormError(field: key, message: $0) } }
    }
}
