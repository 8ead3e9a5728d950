import Fluent
import Vapor

/// The learner's own training: /api/v1/me/assignments, and the public certificate check.
struct LearnerController: RouteCollection {
    struct QuizInput: Decodable { var answers: [LearnerService.Answer]? }

    func boot(routes: any RoutesBuilder) throws {
        let mine = routes.grouped("api", "v1", "me", "assignments")
        mine.get(use: list)
        mine.get(":id", use: show)
        mine.post(":id", "lessons", ":lessonId", "complete", use: completeLesson)
        mine.post(":id", "quiz", use: submitQuiz)
        mine.get(":id", "certificate", use: certificate)
        routes.get("api", "v1", "certificates", ":code", use: verify)
    }

    private func service(_ req: Request) throws -> LearnerService {
        let principal = try req.principal()
        try principal.require(.takeTraining)
        return LearnerService(db: req.db, user: principal.user, actor: req.auditActor, now: req.now)
    }

    @Sendable func list(req: Request) async throws -> Response {
        let service = try service(req)
        let page = try PageParams(from: req)
        var errors = FieldErrors()
        let status = errors.oneOf(req.queryText("status"), field: "status", allowed: ["not_started", "in_progress", "completed", "overdue"])
        try errors.throwIfAny(from: .query)
        return try req.envelope(page: try await service.assignments(status: status, page: page))
    }

    @Sendable func show(req: Request) async throws -> Response {
        let service = try service(req)
        return try req.envelope(try await service.open(try await service.enrollment(req.parameters.get("id"))))
    }

    @Sendable func completeLesson(req: Request) async throws -> Response {
        let service = try service(req)
        let enrollment = try await service.enrollment(req.parameters.get("id"))
        return try req.envelope(try await service.completeLesson(enrollment, lessonID: req.parameters.get("lessonId") ?? ""))
    }

    @Sendable func submitQuiz(req: Request) async throws -> Response {
        let service = try service(req)
        let enrollment = try await service.enrollment(req.parameters.get("id"))
        let input = try req.decodeBody(QuizInput.self)
        guard let answers = input.answers else { throw APIError.validation(["answers": ["The answers field is required."]]) }
        return try req.envelope(try await service.submitQuiz(enrollment, answers: answers))
    }

    @Sendable func certificate(req: Request) async throws -> Response {
        let service = try service(req)
        let enrollment = try await service.enrollment(req.parameters.get("id"))
        guard let code = enrollment.certificateCode, let completedAt = enrollment.completedAt else {
            throw APIError.conflict("The certificate is issued once the assignment is completed.")
        }
        return try await req.page("certificate", CertificatePage(
            name: service.user.fullName, module: enrollment.module.title, completedAt: completedAt,
            score: enrollment.bestScore, code: code, verifyURL: "/api/v1/certificates/\(code)"))
    }

    struct Verification: Encodable {
        let valid: Bool
        let code: String
        let holder: String
        let module: String
        let completedAt: Date
        @Nullable var score: Int?
    }

    /// Public: confirms that a certificate code was issued, for whom and for what.
    @Sendable func verify(req: Request) async throws -> Response {
        let code = (req.parameters.get("code") ?? "").uppercased()
        guard let enrollment = try await Enrollment.query(on: req.db).filter(\.$certificateCode == code)
                .with(\.$user).with(\.$module).first(), let completedAt = enrollment.completedAt else {
            throw APIError.notFound("Certificate")
        }
        return try req.envelope(Verification(valid: true, code: code, holder: enrollment.user.fullName,
                                             module: enrollment.module.title, completedAt: completedAt, score: enrollment.bestScore))
    }
}

struct CertificatePage: Encodable {
    let name: String
    let module: String
    let completedAt: Date
    let score: Int?
    let code: String
    let verifyURL: String
    var completedOn: String {
        let formatter = DateFormatter()
        formatter.dateStyle = .long
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.locale = Locale(identifier: "en_GB")
        return formatter.string(from: completedAt)
    }

    enum CodingKeys: String, CodingKey { case name, module, score, code, verifyURL, completedOn }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(module, forKey: .module)
        try container.encodeIfPresent(score, forKey: .score)
        try container.encode(code, forKey: .code)
        try container.encode(verifyURL, forKey: .verifyURL)
        try container.encode(completedOn, forKey: .completedOn)
    }
}
