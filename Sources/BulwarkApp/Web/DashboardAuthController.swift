import Fluent
import JWTKit
import Vapor

/// Sign-in (with the TOTP step), sign-out and the home page.
struct DashboardAuthController: RouteCollection {
    /// Carries a user between the password and the TOTP step without keeping the password anywhere.
    struct PendingSecondFactor: JWTPayload {
        var sub: SubjectClaim
        var exp: ExpirationClaim
        var purpose: String
        func verify(using algorithm: some JWTAlgorithm) async throws {}
    }

    struct LoginPage: Encodable {
        let title = "Sign in"
        var email: String?
        var error: String?
        var pending: String?
        let action: String
    }

    struct HomePage: Encodable {
        let layout: Layout
        let clientName: String?
        let userCount: Int?
        let permissions: [String]
    }

    func boot(routes: any RoutesBuilder) throws {
        routes.get { req in req.redirect(to: DashboardPath.home) }
        routes.get("login", use: loginForm)
        routes.post("login", use: login)
        routes.post("login", "totp", use: loginTOTP)
        let signedIn = routes.grouped(DashboardGuard())
        signedIn.post("logout", use: logout)
        signedIn.get("dashboard", use: home)
    }

    @Sendable func loginForm(req: Request) async throws -> Response {
        if req.auth.get(Principal.self) != nil { return req.redirect(to: DashboardPath.home) }
        return try await req.page("login", LoginPage(action: DashboardPath.login))
    }

    @Sendable func login(req: Request) async throws -> Response {
        struct Form: Decodable { var email: String?; var password: String? }
        let form = (try? req.content.decode(Form.self)) ?? Form()
        let service = req.authService
        do {
            let user = try await service.verifyPassword(email: form.email ?? "", password: form.password ?? "", actor: req.auditActor)
            if user.totpEnabled {
                let pending = PendingSecondFactor(sub: .init(value: user.id!.uuidString),
                                                  exp: .init(value: req.now.addingTimeInterval(300)), purpose: "totp")
                let token = try await req.application.bulwarkKeys.sign(pending, kid: "bulwark")
                return try await req.page("login", LoginPage(pending: token, action: DashboardPath.loginTOTP))
            }
            return try signIn(try await service.startSession(for: user, actor: req.auditActor), req: req)
        } catch let error as APIError where error.status.code < 500 {
            return try await req.page("login", LoginPage(email: form.email, error: error.message, action: DashboardPath.login),
                                      status: error.status)
        }
    }

    @Sendable func loginTOTP(req: Request) async throws -> Response {
        struct Form: Decodable { var pending: String?; var code: String? }
        let form = (try? req.content.decode(Form.self)) ?? Form()
        guard let token = form.pending,
              let pending = try? await req.application.bulwarkKeys.verify(token, as: PendingSecondFactor.self),
              pending.purpose == "totp", pending.exp.value > req.now,
              let id = UUID(uuidString: pending.sub.value), let user = try await User.find(id, on: req.db) else {
            return try await req.page("login", LoginPage(error: "The sign-in took too long; start again.", action: DashboardPath.login),
                                      status: .unauthorized)
        }
        do {
            try await req.authService.verifySecondFactor(user, code: form.code ?? "", field: "code", actor: req.auditActor)
            return try signIn(try await req.authService.startSession(for: user, actor: req.auditActor), req: req)
        } catch let error as APIError where error.status.code < 500 {
            return try await req.page("login", LoginPage(error: error.message, pending: token, action: DashboardPath.loginTOTP),
                                      status: error.status)
        }
    }

    private func signIn(_ signedIn: AuthService.SignedIn, req: Request) throws -> Response {
        let response = req.redirect(to: DashboardPath.home)
        response.cookies[PrincipalAuthenticator.cookieName] = SessionCookie.make(
            signedIn.token, expiresAt: signedIn.session.expiresAt, secure: req.application.settings.secureCookies)
        return response
    }

    @Sendable func logout(req: Request) async throws -> Response {
        try await req.authService.logout(try req.principal(), actor: req.auditActor)
        let response = req.redirect(to: DashboardPath.login)
        response.cookies[PrincipalAuthenticator.cookieName] = SessionCookie.expired(secure: req.application.settings.secureCookies)
        return response
    }

    @Sendable func home(req: Request) async throws -> Response {
        let principal = try req.principal()
        let scope = try req.scope()
        let client = try? await scope.actingClient()
        var userCount: Int?
        if principal.has(.viewUsers), let client { userCount = try await scope.users(of: client).count() }
        return try await req.page("home", HomePage(
            layout: Layout(title: "Home", principal: principal, req: req), clientName: client?.name,
            userCount: userCount, permissions: principal.permissionNames))
    }
}
