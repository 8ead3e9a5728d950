import Fluent
import SQLKit
import Vapor

/// Seed 000: /api/v1/export/training-completion and /api/v1/export/audit-logs (format=csv|json), streamed.
struct ExportsController: RouteCollection {
    static let pageSize = 1000

    struct CompletionRow: Encodable, Sendable {
        let enrollmentId: UUID
        let userId: UUID
        let name: String
        let email: String
        @Nullable var department: String?
        let campaignId: UUID
        let campaignName: String
        let moduleId: UUID
        let moduleTitle: String
        var status: String
        let progress: Int
        @Nullable var bestScore: Int?
        let attempts: Int
        let dueAt: Date
        @Nullable var completedAt: Date?
        @Nullable var certificateCode: String?

        func write(to line: inout CSV.Writer) {
            line.id(enrollmentId); line.id(userId); line.text(name); line.text(email); line.text(department); line.id(campaignId)
            line.text(campaignName); line.id(moduleId); line.text(moduleTitle); line.text(status); line.number(progress)
            line.number(bestScore); line.number(attempts); line.time(dueAt); line.time(completedAt); line.text(certificateCode)
        }
    }

    func boot(routes: any RoutesBuilder) throws {
        let export = routes.grouped("api", "v1", "export")
        export.get("training-completion", use: trainingCompletion)
        export.get("audit-logs", use: auditLogs)
    }

    private struct Common {
        let format: ExportStream.Format
        let from: Date?
        let to: Date?
    }

    private func common(_ req: Request, errors: inout FieldErrors) -> Common {
        let format = ExportStream.Format.parse(req, errors: &errors)
        let from = errors.date(req.queryText("from"), field: "from")
        let to = errors.date(req.queryText("to"), field: "to")
        if let from, let to, from > to { errors.add("to", "The to must be after from.") }
        return Common(format: format, from: from, to: to)
    }

    @Sendable func trainingCompletion(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.viewReports)
        var errors = FieldErrors()
        let options = common(req, errors: &errors)
        let campaignID = errors.uuid(req.queryText("campaign_id"), field: "campaign_id")
        let status = errors.oneOf(req.queryText("status"), field: "status", allowed: ["not_started", "in_progress", "completed", "overdue"])
        try errors.throwIfAny(from: .query)
        let client = try await scope.actingClient()
        if let campaignID { _ = try await req.campaignService.campaign(campaignID.lowercasedString, in: client) }
        let db = req.db
        let now = req.now
        let clientID = client.id!
        let header = ["enrollment_id", "user_id", "name", "email", "department", "campaign_id", "campaign_name", "module_id",
                      "module_title", "status", "progress", "best_score", "attempts", "due_at", "completed_at", "certificate_code"]
        return ExportStream.response(
            app: req.application, format: options.format, filename: "training-completion", header: header,
            csvLine: { (row: CompletionRow, line: inout CSV.Writer) in row.write(to: &line) },
            keyStyle: req.keyStyle,
            nextPage: { after in
                // Keyset paging on the primary key (every page costs the same however deep the export goes), one joined
                // query per page read as `PlainRow`s: building models for a million rows costs more than the query.
                // Each page is a range of the (client, id) or (campaign, id) index from the cursor, already in order
                // (`CreateWalkIndexes`): no page sorts the rest of the campaign.
                var conditions: [SQLQueryString] = ["e.client_id = \(bind: clientID)"]
                if let after, let id = UUID(uuidString: after) { conditions.append("e.id > \(bind: id)") }
                if let campaignID { conditions.append("e.campaign_id = \(bind: campaignID)") }
                switch status {
                case "overdue": conditions.append("e.status <> 'completed' AND e.due_at < \(bind: now)")
                case .some(let value): conditions.append("e.status = \(bind: value)")
                case nil: break
                }
                if let from = options.from { conditions.append("e.created_at >= \(bind: from)") }
                if let to = options.to { conditions.append("e.created_at <= \(bind: to)") }
                let filter = conditions.dropFirst().reduce(conditions[0]) { "\($0) AND \($1)" }
                let page = try await db.plainRows("""
                    SELECT e.id, e.user_id, u.first_name, u.last_name, u.email, u.department, e.campaign_id, c.name AS campaign_name,
                           e.module_id, m.title AS module_title, e.status, e.progress, e.best_score, e.attempts, e.due_at,
                           e.completed_at, e.certificate_code
                    FROM training_enrollments e JOIN users u ON u.id = e.user_id
                    JOIN training_campaigns c ON c.id = e.campaign_id JOIN training_modules m ON m.id = e.module_id
                    WHERE \(filter) ORDER BY e.id LIMIT \(bind: Self.pageSize)
                    """) { row in
                    var completion = try CompletionRow(
                        enrollmentId: row.next(), userId: row.next(), name: User.fullName(row.next(), row.next()), email: row.next(),
                        department: row.next(), campaignId: row.next(), campaignName: row.next(), moduleId: row.next(),
                        moduleTitle: row.next(), status: row.next(), progress: row.next(), bestScore: row.next(),
                        attempts: row.next(), dueAt: row.next(), completedAt: row.next(), certificateCode: row.next())
                    completion.status = Enrollment.displayStatus(completion.status, dueAt: completion.dueAt, now: now)
                    return completion
                }
                return (page, page.last?.enrollmentId.uuidString)
            })
    }

    @Sendable func auditLogs(req: Request) async throws -> Response {
        let scope = try req.scope()
        try scope.require(.viewAuditLogs)
        var errors = FieldErrors()
        let options = common(req, errors: &errors)
        let action = errors.optional(req.queryText("action"), field: "action")
        try errors.throwIfAny(from: .query)
        let client = try await scope.actingClient()
        let db = req.db
        let clientID = client.id!
        let chainKey = "client:\(clientID)"
        let header = ["id", "sequence", "created_at", "action", "actor_id", "actor_email", "target_type", "target_id", "ip_address",
                      "user_agent", "details", "previous_hash", "hash"]
        return ExportStream.response(
            app: req.application, format: options.format, filename: "audit-logs", header: header,
            csvLine: { (entry: AuditLogsV1Controller.EntryResponse, line: inout CSV.Writer) in
                line.id(entry.id); line.number(entry.sequence); line.time(entry.createdAt); line.text(entry.action)
                line.id(entry.actorId); line.text(entry.actorEmail); line.text(entry.targetType); line.text(entry.targetId)
                line.text(entry.ipAddress); line.text(entry.userAgent); line.text(entry.details.map { JSONValue.canonical($0) })
                line.text(entry.previousHash); line.text(entry.hash)
            },
            keyStyle: req.keyStyle,
            nextPage: { after in
                // The chain's sequence is the natural keyset: ordered, dense and indexed.
                let query = AuditEntry.query(on: db).filter(\.$chainKey == chainKey).filter(\.$clientID == clientID)
                if let after, let seq = Int(after) { query.filter(\.$seq > seq) }
                if let action { query.filter(\.$action == action) }
                if let from = options.from { query.filter(\.$createdAt >= from) }
                if let to = options.to { query.filter(\.$createdAt <= to) }
                let rows = try await query.sort(\.$seq).limit(Self.pageSize).all()
                return (rows.map(AuditLogsV1Controller.EntryResponse.init), rows.last.map { String($0.seq) })
            })
    }
}
