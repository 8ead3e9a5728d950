import Fluent
import Vapor

/// What a learner does: see assignments, read lessons, take the quiz (scored here), earn a certificate.
struct LearnerService: Sendable {
    let db: any Database
    let user: User
    let actor: AuditActor
    let now: Date

    func assignments(status: String?, page: PageParams) async throws -> PageResult<AssignmentResponse> {
        let query = Enrollment.query(on: db).filter(\.$user.$id == user.id!).with(\.$module).with(\.$campaign)
            .join(TrainingCampaign.self, on: \Enrollment.$campaign.$id == \TrainingCampaign.$id)
            .filter(TrainingCampaign.self, \.$status ~~ ["active", "completed"])
        switch status {
        case "overdue": query.filter(\.$status != "completed").filter(\.$dueAt < now)
        case .some(let value): query.filter(\.$status == value)
        case nil: break
        }
        let (items, meta) = try await query.sort(\.$dueAt).sort(\.$id).pageOfModels(page)
        return PageResult(items: items.map { AssignmentResponse($0, now: now) }, meta: meta)
    }

    func enrollment(_ rawID: String?) async throws -> Enrollment {
        guard let id = rawID.flatMap(UUID.init(uuidString:)),
              let enrollment = try await Enrollment.query(on: db).filter(\.$id == id).filter(\.$user.$id == user.id!)
                .with(\.$module).with(\.$campaign).first(),
              ["active", "completed"].contains(enrollment.campaign.status) else {
            throw APIError.notFound("Assignment")
        }
        return enrollment
    }

    /// Opening an assignment starts it.
    func open(_ enrollment: Enrollment) async throws -> AssignmentDetailResponse {
        if enrollment.status == Enrollment.Status.notStarted.rawValue {
            enrollment.status = Enrollment.Status.inProgress.rawValue
            enrollment.startedAt = now
            try await record(enrollment, action: "training.started")
        }
        return AssignmentDetailResponse(enrollment, now: now)
    }

    func completeLesson(_ enrollment: Enrollment, lessonID: String) async throws -> AssignmentDetailResponse {
        let module = enrollment.module
        guard module.lessons.contains(where: { $0.id == lessonID }) else { throw APIError.notFound("Lesson") }
        if !enrollment.completedLessons.contains(lessonID) {
            enrollment.completedLessons.append(lessonID)
            if enrollment.status == Enrollment.Status.notStarted.rawValue {
                enrollment.status = Enrollment.Status.inProgress.rawValue
                enrollment.startedAt = now
            }
            // A module without a quiz is complete once every lesson is read.
            if module.questions.isEmpty && enrollment.completedLessons.count >= module.lessons.count {
                markCompleted(enrollment, score: 100)
            }
            enrollment.progress = progress(of: enrollment)
            try await record(enrollment, action: enrollment.status == "completed" ? "training.completed" : "training.lesson_completed",
                             details: ["lesson_id": .string(lessonID)])
        }
        return AssignmentDetailResponse(enrollment, now: now)
    }

    struct Answer: Decodable, Sendable {
        var questionId: String?
        var selected: [Int]?
    }

    /// Scores the answers on the server. All lessons must be read first; attempts are limited by the module.
    func submitQuiz(_ enrollment: Enrollment, answers: [Answer]) async throws -> QuizResultResponse {
        let module = enrollment.module
        guard !module.questions.isEmpty else { throw APIError.conflict("This module has no quiz.") }
        if enrollment.status == Enrollment.Status.completed.rawValue {
            throw APIError.conflict("This assignment is already completed.")
        }
        if enrollment.completedLessons.count < module.lessons.count {
            throw APIError.conflict("Finish every lesson before taking the quiz.")
        }
        if module.maxAttempts > 0 && enrollment.attempts >= module.maxAttempts {
            throw APIError.conflict("No attempts left; ask your administrator to reset this assignment.")
        }
        var errors = FieldErrors()
        var chosen: [String: Set<Int>] = [:]
        for (index, answer) in answers.enumerated() {
            guard let questionID = answer.questionId, let question = module.questions.first(where: { $0.id == questionID }) else {
                errors.add("answers.\(index).question_id", "Unknown question.")
                continue
            }
            let selected = Set(answer.selected ?? [])
            if selected.contains(where: { $0 < 0 || $0 >= question.options.count }) {
                errors.add("answers.\(index).selected", "Selected options must be indexes of the question's options.")
            }
            chosen[questionID] = selected
        }
        let unanswered = module.questions.filter { chosen[$0.id] == nil }
        if !unanswered.isEmpty { errors.add("answers", "Answer every question (\(unanswered.count) missing).") }
        try errors.throwIfAny()

        let results = module.questions.map { question in
            QuizResultResponse.QuestionResult(
                questionId: question.id, correct: chosen[question.id] == Set(question.correct),
                selected: chosen[question.id].map { $0.sorted() } ?? [], correctAnswers: question.correct,
                explanation: question.explanation)
        }
        let score = Int((Double(results.filter(\.correct).count) / Double(results.count) * 100).rounded())
        let passed = score >= module.passMark
        enrollment.attempts += 1
        enrollment.lastAttemptAt = now
        enrollment.bestScore = max(enrollment.bestScore ?? 0, score)
        if enrollment.status == Enrollment.Status.notStarted.rawValue { enrollment.status = Enrollment.Status.inProgress.rawValue }
        if passed { markCompleted(enrollment, score: score) }
        enrollment.progress = progress(of: enrollment)
        try await record(enrollment, action: passed ? "training.completed" : "training.quiz_failed",
                         details: ["score": .number(Double(score)), "attempt": .number(Double(enrollment.attempts))])
        let remaining = module.maxAttempts == 0 ? nil : max(0, module.maxAttempts - enrollment.attempts)
        return QuizResultResponse(score: score, passed: passed, passMark: module.passMark, attempts: enrollment.attempts,
                                  attemptsRemaining: remaining, certificateCode: enrollment.certificateCode, results: results)
    }

    private func markCompleted(_ enrollment: Enrollment, score: Int) {
        enrollment.status = Enrollment.Status.completed.rawValue
        enrollment.completedAt = now
        enrollment.bestScore = max(enrollment.bestScore ?? 0, score)
        enrollment.certificateCode = enrollment.certificateCode ?? Certificate.newCode()
    }

    /// Lessons count for 80 %, a passed quiz for the rest; a completed assignment is 100 %.
    private func progress(of enrollment: Enrollment) -> Int {
        if enrollment.status == Enrollment.Status.completed.rawValue { return 100 }
        let lessons = max(1, enrollment.module.lessons.count)
        let share = enrollment.module.questions.isEmpty ? 100.0 : 80.0
        return min(99, Int((Double(enrollment.completedLessons.count) / Double(lessons) * share).rounded()))
    }

    private func record(_ enrollment: Enrollment, action: String, details: [String: JSONValue]? = nil) async throws {
        let actor = self.actor
        let now = self.now
        let companyID = user.$company.id
        try await db.transaction { db in
            try await enrollment.save(on: db)
            try await AuditService(db: db, now: now).record(
                AuditEvent(action, target: ("enrollment", enrollment.id), companyID: companyID, clientID: enrollment.clientID,
                           details: details), by: actor)
        }
    }
}

enum Certificate {
    /// 16 characters from an unambiguous alphabet: easy to type from paper, about 80 bits.
    static func newCode() -> String {
        let alphabet = Array("ABCDEFGHJKLMNPQRSTUVWXYZ23456789")
        var generator = SystemRandomNumberGenerator()
        let raw = (0..<16).map { _ in alphabet[Int.random(in: 0..<alphabet.count, using: &generator)] }
        return String(raw[0..<4]) + "-" + String(raw[4..<8]) + "-" + String(raw[8..<12]) + "-" + String(raw[12..<16])
    }
}
