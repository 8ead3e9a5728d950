import Fluent
import Vapor

/// Profile: change password, enrol in two-factor sign-in.
struct DashboardProfileController: RouteCollection {
    struct ProfilePage: Encodable {
        let layout: Layout
        let email: String
        let totpEnabled: Bool
        let totpSecret: String?
        let totpURI: String?
        let errors: [FormError]
        let passwordAction = DashboardPath.profilePassword
        let totpSetupAction = DashboardPath.profileTOTPSetup
        let totpEnableAction = DashboardPath.profileTOTPEnable
    }

    func boot(routes: any RoutesBuilder) throws {
        let profile = routes.grouped(DashboardGuard()).grouped("profile")
        profile.get(use: show)
        profile.post("password", use: changePassword)
        profile.post("totp", "setup", use: totpSetup)
        profile.post("totp", "enable", use: totpEnable)
    }

    private func page(_ req: Request, secret: String? = nil, uri: String? = nil, errors: [FormError] = [],
                      status: HTTPStatus = .ok) async throws -> Response {
        let principal = try req.principal()
        return try await req.page("profile", ProfilePage(
            layout: Layout(title: "Profile", principal: principal, req: req), email: principal.user.email,
            totpEnabled: principal.user.totpEnabled, totpSecret: secret, totpURI: uri, errors: errors), status: status)
    }

    @Sendable func show(req: Request) async throws -> Response {
        try await page(req)
    }

    @Sendable func changePassword(req: Request) async throws -> Response {
        struct Form: Decodable { var currentPassword: String?; var newPassword: String?; var newPasswordConfirmation: String? }
        let form = try req.content.decode(Form.self)
        let principal = try req.principal()
        var keep: UUID?
        if case let .session(id) = principal.credential { keep = id }
        do {
            try await req.authService.changePassword(try await req.freshUser(), current: form.currentPassword, new: form.newPassword,
                                                     confirmation: form.newPasswordConfirmation, keepSession: keep,
                                                     actor: req.auditActor)
            return req.redirect(to: DashboardPath.profile + "?notice=password_changed")
        } catch {
            guard let errors = FormError.from(error) else { throw error }
            return try await page(req, errors: errors, status: .unprocessableEntity)
        }
    }

    @Sendable func totpSetup(req: Request) async throws -> Response {
        do {
            let setup = try await TwoFactorService(app: req.application, db: req.db, now: req.now)
                .begin(for: try await req.freshUser(), actor: req.auditActor)
            return try await page(req, secret: setup.secret, uri: setup.uri)
        } catch {
            guard let errors = FormError.from(error) else { throw error }
            return try await page(req, errors: errors, status: .conflict)
        }
    }

    @Sendable func totpEnable(req: Request) async throws -> Response {
        struct Form: Decodable { var code: String? }
        let form = try req.content.decode(Form.self)
        do {
            try await TwoFactorService(app: req.application, db: req.db, now: req.now)
                .enable(for: try await req.freshUser(), code: form.code, field: "code", actor: req.auditActor)
            return req.redirect(to: DashboardPath.profile + "?notice=totp_enabled")
        } catch {
            guard let errors = FormError.from(error) else { throw error }
            return try await page(req, errors: errors, status: .unprocessableEntity)
        }
    }
}
