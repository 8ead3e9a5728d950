import Foundation

struct AssignmentResponse: Encodable, Sendable {
    let id: UUID
    let campaignId: UUID
    let campaignName: String
    let moduleId: UUID
    let moduleTitle: String
    let estimatedMinutes: Int
    let status: String
    let progress: Int
    @Nullable var bestScore: Int?
    let attempts: Int
    let dueAt: Date
    @Nullable var startedAt: Date?
    @Nullable var completedAt: Date?
    @Nullable var certificateCode: String?

    init(_ enrollment: Enrollment, now: Date) {
        id = enrollment.id!
        campaignId = enrollment.$campaign.id
        campaignName = enrollment.campaign.name
        moduleId = enrollment.$module.id
        moduleTitle = enrollment.module.title
        estimatedMinutes = enrollment.module.estimatedMinutes
        status = enrollment.displayStatus(now: now)
        progress = enrollment.progress
        bestScore = enrollment.bestScore
        attempts = enrollment.attempts
        dueAt = enrollment.dueAt
        startedAt = enrollment.startedAt
        completedAt = enrollment.completedAt
        certificateCode = enrollment.certificateCode
    }
}

struct AssignmentDetailResponse: Encodable, Sendable {
    struct LessonView: Encodable, Sendable {
        let id: String
        let position: Int
        let title: String
        let bodyHtml: String
        let completed: Bool
    }

    let assignment: AssignmentResponse
    let summary: String
    let passMark: Int
    @Nullable var attemptsRemaining: Int?
    let lessons: [LessonView]
    /// Without the correct answers: those are only shown after a submission.
    let questions: [LearnerQuestionResponse]

    init(_ enrollment: Enrollment, now: Date) {
        assignment = AssignmentResponse(enrollment, now: now)
        let module = enrollment.module
        summary = module.summary
        passMark = module.passMark
        attemptsRemaining = module.maxAttempts == 0 ? nil : max(0, module.maxAttempts - enrollment.attempts)
        let done = Set(enrollment.completedLessons)
        lessons = module.lessons.enumerated().map {
            LessonView(id: $1.id, position: $0 + 1, title: $1.title, bodyHtml: SafeMarkdown.html($1.body), completed: done.contains($1.id))
        }
        questions = module.questions.map(LearnerQuestionResponse.init)
    }
}

struct QuizResultResponse: Encodable, Sendable {
    struct QuestionResult: Encodable, Sendable {
        let questionId: String
        let correct: Bool
        let selected: [Int]
        let correctAnswers: [Int]
        let explanation: String
    }

    let score: Int
    let passed: Bool
    let passMark: Int
    let attempts: Int
    @Nullable var attemptsRemaining: Int?
    @Nullable var certificateCode: String?
    let results: [QuestionResult]
}
