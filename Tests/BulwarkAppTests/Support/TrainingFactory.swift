@testable import BulwarkApp
import Fluent
import Foundation
import Testing
import Vapor

enum TrainingFactory {
    static func builtinModule(_ app: Application, key: String = "phishing-and-email") async throws -> TrainingModule {
        try await TrainingModule.query(on: app.db).filter(\.$builtinKey == key).first()!
    }

    /// An active campaign of `modules` for the whole client (or the given departments), due `dueIn` seconds from now.
    static func campaign(_ app: Application, tenant: TestTenant, modules: [TrainingModule], departments: [String]? = nil,
                         startIn: TimeInterval = -60, dueIn: TimeInterval = 7 * 86_400, status: String = "active") async throws -> TrainingCampaign {
        let now = app.clock.now()
        var input = CampaignInput()
        input.name = "Campaign \(UUID().uuidString.prefix(6))"
        input.moduleIds = modules.map { $0.id!.uuidString }
        input.audience = departments.map { .init(type: "departments", departments: $0) } ?? .init(type: "all")
        input.startAt = now.addingTimeInterval(startIn)
        input.dueAt = now.addingTimeInterval(dueIn)
        input.status = status
        let scope = Scope(principal: Principal(user: tenant.admin, credential: .session(UUID())),
                          db: app.db, requestedClientID: nil)
        return try await CampaignService(db: app.db, actor: .system, now: now)
            .create(input, in: tenant.client, modules: ModuleService(scope: scope, actor: .system, now: now))
    }

    /// Runs the queued enrolment jobs to the end, as the worker would.
    static func runEnrolmentJobs(_ app: Application) async throws {
        for job in try await app.jobs.claim(limit: 50, worker: "test-worker") {
            guard job.kind == TrainingEnrolmentJob.kind else {
                try await app.jobs.handBack(job, worker: "test-worker")
                continue
            }
            try await TrainingEnrolmentJob().run(payload: job.payload, context: .test(app))
            #expect(try await app.jobs.complete(job, worker: "test-worker"))
        }
    }

    static func enrollments(_ app: Application, of user: User) async throws -> [Enrollment] {
        try await Enrollment.query(on: app.db).filter(\.$user.$id == user.id!).with(\.$module).all()
    }

    /// Answers every question of a module correctly (or all wrong).
    static func answers(for module: TrainingModule, correct: Bool = true) -> [[String: Any]] {
        module.questions.map { question in
            let wrong = (0..<question.options.count).filter { !question.correct.contains($0) }
            return ["question_id": question.id, "selected": correct ? question.correct : [wrong.first ?? 0]]
        }
    }
}

/// Records messages instead of sending them; outcomes can be scripted per recipient.
final class RecordingMailer: Mailer, @unchecked Sendable {
    // Safe: all state is behind `lock`.
    private let lock = NSLock()
    private var _sent: [MailMessage] = []
    var outcomeFor: @Sendable (MailMessage) -> MailOutcome = { _ in .sent }

    var sent: [MailMessage] { lock.withLock { _sent } }

    func deliver(_ messages: [MailMessage], proceed: (Int) async throws -> MailStep,
                 record: (Int, MailOutcome) async throws -> Void) async throws {
        for (index, message) in messages.enumerated() {
            switch try await proceed(index) {
            case .stop: return
            case .skip: continue
            case .send: break
            }
            let outcome = outcomeFor(message)
            if outcome == .sent { lock.withLock { _sent.append(message) } }
            try await record(index, outcome)
        }
    }
}
