import Fluent
import Vapor

/// Learner pages: assignments, lesson reader, quiz with results and explanations, certificate.
struct DashboardLearnController: RouteCollection {
    struct AssignmentRow: Encodable {
        let href: String
        let title: String
        let campaign: String
        let due: String
        let status: String
        let progress: Int
    }

    struct HomePage: Encodable {
        let layout: Layout
        let assignments: [AssignmentRow]
    }

    struct QuestionView: Encodable {
        struct Option: Encodable { let index: Int; let text: String }
        let id: String
        let number: Int
        let prompt: String
        let multiple: Bool
        let options: [Option]
    }

    struct ResultView: Encodable {
        let number: Int
        let prompt: String
        let correct: Bool
        let correctText: String
        let explanation: String
    }

    struct AssignmentPage: Encodable {
        let layout: Layout
        let detail: AssignmentDetailResponse
        let lessons: [LessonRow]
        let allLessonsDone: Bool
        let questions: [QuestionView]
        let quizAction: String
        let results: [ResultView]?
        let score: Int?
        let passed: Bool?
        let certificatePath: String?
        let errors: [FormError]
    }

    struct LessonRow: Encodable {
        let id: String
        let position: Int
        let title: String
        let bodyHtml: String
        let completed: Bool
        let action: String
    }

    func boot(routes: any RoutesBuilder) throws {
        let learn = routes.grouped(DashboardGuard()).grouped("learn")
        learn.get(use: home)
        learn.get(":id", use: assignment)
        learn.post(":id", "lessons", ":lessonId", use: lessonDone)
        learn.post(":id", "quiz", use: quiz)
        learn.get(":id", "certificate", use: certificate)
    }

    private func service(_ req: Request) throws -> LearnerService {
        let principal = try req.principal()
        try principal.require(.takeTraining)
        return LearnerService(db: req.db, user: principal.user, actor: req.auditActor, now: req.now)
    }

    @Sendable func home(req: Request) async throws -> Response {
        let service = try service(req)
        let page = try await service.assignments(status: nil, page: PageParams(page: 1, perPage: 100))
        let rows = page.items.map {
            AssignmentRow(href: DashboardPath.assignment($0.id.uuidString), title: $0.moduleTitle, campaign: $0.campaignName,
                          due: ISO8601.string($0.dueAt).prefix(10).description, status: $0.status.replacingOccurrences(of: "_", with: " "),
                          progress: $0.progress)
        }
        return try await req.page("learn", HomePage(layout: Layout(title: "My training", principal: try req.principal(), req: req),
                                                     assignments: rows))
    }

    private func render(_ req: Request, _ enrollment: Enrollment, detail: AssignmentDetailResponse,
                        result: QuizResultResponse? = nil, errors: [FormError] = [], status: HTTPStatus = .ok) async throws -> Response {
        let id = enrollment.id!.uuidString
        let lessons = detail.lessons.map {
            LessonRow(id: $0.id, position: $0.position, title: $0.title, bodyHtml: $0.bodyHtml, completed: $0.completed,
                      action: DashboardPath.lessonDone(id, $0.id))
        }
        let questions = enrollment.module.questions.enumerated().map { index, question in
            QuestionView(id: question.id, number: index + 1, prompt: question.prompt, multiple: question.kind == "multiple",
                         options: question.options.enumerated().map { QuestionView.Option(index: $0, text: $1) })
        }
        let results = result.map { result in
            result.results.enumerated().map { index, item in
                let question = enrollment.module.questions[index]
                return ResultView(number: index + 1, prompt: question.prompt, correct: item.correct,
                                  correctText: item.correctAnswers.map { question.options[$0] }.joined(separator: "; "),
                                  explanation: item.explanation)
            }
        }
        return try await req.page("assignment", AssignmentPage(
            layout: Layout(title: enrollment.module.title, principal: try req.principal(), req: req), detail: detail,
            lessons: lessons, allLessonsDone: lessons.allSatisfy(\.completed), questions: questions,
            quizAction: DashboardPath.quiz(id), results: results, score: result?.score, passed: result?.passed,
            certificatePath: enrollment.certificateCode == nil ? nil : DashboardPath.certificate(id), errors: errors), status: status)
    }

    @Sendable func assignment(req: Request) async throws -> Response {
        let service = try service(req)
        let enrollment = try await service.enrollment(req.parameters.get("id"))
        return try await render(req, enrollment, detail: try await service.open(enrollment))
    }

    @Sendable func lessonDone(req: Request) async throws -> Response {
        let service = try service(req)
        let enrollment = try await service.enrollment(req.parameters.get("id"))
        _ = try await service.completeLesson(enrollment, lessonID: req.parameters.get("lessonId") ?? "")
        return req.redirect(to: DashboardPath.assignment(enrollment.id!.uuidString) + "?notice=lesson_done")
    }

    /// Form fields are `q-<questionId>` holding an option index; checkboxes repeat the field.
    @Sendable func quiz(req: Request) async throws -> Response {
        let service = try service(req)
        let enrollment = try await service.enrollment(req.parameters.get("id"))
        let fields = FormFields(req.body.string ?? "")
        let answers = enrollment.module.questions.compactMap { question -> LearnerService.Answer? in
            let selected = fields.all("q-\(question.id)").compactMap { Int($0) }
            return selected.isEmpty ? nil : LearnerService.Answer(questionId: question.id, selected: selected)
        }
        do {
            let result = try await service.submitQuiz(enrollment, answers: answers)
            return try await render(req, enrollment, detail: AssignmentDetailResponse(enrollment, now: req.now), result: result)
        } catch {
            guard let errors = FormError.from(error) else { throw error }
            return try await render(req, enrollment, detail: AssignmentDetailResponse(enrollment, now: req.now), errors: errors,
                                    status: .unprocessableEntity)
        }
    }

    @Sendable func certificate(req: Request) async throws -> Response {
        let service = try service(req)
        let enrollment = try await service.enrollment(req.parameters.get("id"))
        guard let code = enrollment.certificateCode, let completedAt = enrollment.completedAt else { throw APIError.notFound("Certificate") }
        return try await req.page("certificate", CertificatePage(
            name: service.user.fullName, module: enrollment.module.title, completedAt: completedAt, score: enrollment.bestScore,
            code: code, verifyURL: "/api/v1/certificates/\(code)"))
    }
}
