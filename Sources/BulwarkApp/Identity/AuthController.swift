import Fluent
import Vapor

/// Tabletop family (camelCase): /api/auth register, login, logout and TOTP enrolment.
struct AuthController: RouteCollection {
    struct RegisterInput: Decodable { var email, password, firstName, lastName, companyName: String? }
    struct LoginInput: Decodable { var email, password, totpCode: String? }
    struct CodeInput: Decodable { var code: String? }
    struct SignedInResponse: Encodable {
        let token: String
        let tokenType = "Bearer"
        let expiresAt: Date
        let user: AccountResponse
    }
    struct TOTPSetupResponse: Encodable { let secret: String; let otpauthUri: String }

    func boot(routes: any RoutesBuilder) throws {
        let auth = routes.grouped("api", "auth")
        auth.post("register", use: register)
        auth.post("login", use: login)
        auth.post("logout", use: logout)
        auth.post("totp", "setup", use: totpSetup)
        auth.post("totp", "enable", use: totpEnable)
        auth.post("totp", "disable", use: totpDisable)
    }

    @Sendable func register(req: Request) async throws -> Response {
        let input = try req.decodeBody(RegisterInput.self)
        var errors = FieldErrors()
        let email = errors.email(input.email)
        let password = errors.password(input.password)
        let firstName = errors.required(input.firstName, field: "firstName", maxLength: 100)
        let lastName = errors.required(input.lastName, field: "lastName", maxLength: 100)
        let companyName = errors.optional(input.companyName, field: "companyName")
        try errors.throwIfAny()
        let signedIn = try await req.authService.register(
            .init(email: email!, password: password!, firstName: firstName!, lastName: lastName!, companyName: companyName),
            actor: req.auditActor)
        return try respond(signedIn, status: .created, req: req)
    }

    @Sendable func login(req: Request) async throws -> Response {
        let input = try req.decodeBody(LoginInput.self)
        var errors = FieldErrors()
        let email = errors.required(input.email, field: "email")
        if input.password?.isEmpty ?? true { errors.add("password", "The password field is required.") }
        try errors.throwIfAny()
        let signedIn = try await req.authService.login(
            email: email!, password: input.password!, totpCode: input.totpCode, totpField: "totpCode", actor: req.auditActor)
        return try respond(signedIn, status: .ok, req: req)
    }

    @Sendable func logout(req: Request) async throws -> Response {
        let principal = try req.principal()
        try await req.authService.logout(principal, actor: req.auditActor)
        let response = try req.message("Logged out.")
        response.cookies[PrincipalAuthenticator.cookieName] = SessionCookie.expired(secure: req.application.settings.secureCookies)
        return response
    }

    private func respond(_ signedIn: AuthService.SignedIn, status: HTTPStatus, req: Request) throws -> Response {
        let response = try req.envelope(SignedInResponse(token: signedIn.token, expiresAt: signedIn.session.expiresAt,
                                                         user: AccountResponse(signedIn.user)), status: status)
        response.cookies[PrincipalAuthenticator.cookieName] = SessionCookie.make(
            signedIn.token, expiresAt: signedIn.session.expiresAt, secure: req.application.settings.secureCookies)
        return response
    }

    // MARK: Two-factor enrolment: setup stores a pending secret, enable confirms it with a code.

    @Sendable func totpSetup(req: Request) async throws -> Response {
        let setup = try await TwoFactorService(app: req.application, db: req.db, now: req.now)
            .begin(for: try await req.freshUser(), actor: req.auditActor)
        return try req.envelope(TOTPSetupResponse(secret: setup.secret, otpauthUri: setup.uri))
    }

    @Sendable func totpEnable(req: Request) async throws -> Response {
        let input = try req.decodeBody(CodeInput.self)
        let user = try await req.freshUser()
        try await TwoFactorService(app: req.application, db: req.db, now: req.now)
            .enable(for: user, code: input.code, field: "code", actor: req.auditActor)
        return try req.envelope(AccountResponse(user))
    }

    @Sendable func totpDisable(req: Request) async throws -> Response {
        let input = try req.decodeBody(CodeInput.self)
        let user = try await req.freshUser()
        try await TwoFactorService(app: req.application, db: req.db, now: req.now)
            .disable(for: user, code: input.code, field: "code", actor: req.auditActor)
        return try req.envelope(AccountResponse(user))
    }
}

enum SessionCookie {
    static func make(_ token: String, expiresAt: Date, secure: Bool) -> HTTPCookies.Value {
        HTTPCookies.Value(string: token, expires: expiresAt, path: "/", isSecure: secure, isHTTPOnly: true, sameSite: .lax)
    }

    static func expired(secure: Bool) -> HTTPCookies.Value {
        HTTPCookies.Value(string: "", expires: Date(timeIntervalSince1970: 0), maxAge: 0, path: "/", isSecure: secure,
                          isHTTPOnly: true, sameSite: .lax)
    }
}
