import Fluent
import SQLKit
import Vapor

/// Public tracking routes: no login, addressed by the simulation's unguessable token. An unknown token records nothing.
struct TrackingController: RouteCollection {
    /// A transparent 1×1 GIF.
    static let pixel = ByteBuffer(bytes: [
        0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
        0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
        0x02, 0x44, 0x01, 0x00, 0x3b,
    ])
    /// Field names that look like secrets are never recorded, not even by name.
    static let secretFieldPattern = "pass|pwd|secret|pin|otp|token|card|cvv|ssn"

    func boot(routes: any RoutesBuilder) throws {
        let track = routes.grouped("api", "phishing", "track")
        track.get("open", ":token", use: open)
        track.get("click", ":token", use: click)
        track.post("submit", ":token", use: submit)
        routes.post("api", "phishing", "report", ":token", use: report)
        routes.on(.OPTIONS, "api", "phishing", "report", ":token", use: reportPreflight)
        routes.get("phish", ":token", use: landing)
        let training = routes.grouped("api", "v1", "phishing", "training")
        training.get(":token", use: trainingPayload)
        training.get(":token", "form", use: formConfig)
    }

    private func simulation(_ req: Request) async throws -> Simulation? {
        guard let token = TrackingTarget.plausibleToken(req.parameters.get("token")) else { return nil }
        return try await Simulation.query(on: req.db).filter(\.$token == token).with(\.$campaign).first()
    }

    private func target(_ req: Request) async throws -> TrackingTarget? {
        try await TrackingTarget.find(token: req.parameters.get("token"), in: req.application.trackingTargets)
    }

    /// Keeps the hit in the tracking journal, whose flusher checks that the token names a simulation of a campaign
    /// that still records, and flags scanners. While the database falls behind, hits are let through at its pace
    /// (each waits a little) and, past `Self.backlog`, wait for room; after `Self.roomWait` a hit the full journal
    /// cannot take is refused.
    private func keep(_ kind: String, token: String, req: Request, details: String? = nil) async throws {
        let journal = req.application.trackingWriter
        // The time of the hit, not of its room in the journal.
        let occurredAt = req.now
        await journal.admit(pacedAbove: Self.pacedBacklog, roomBelow: Self.backlog, timeout: Self.roomWait, on: req.eventLoop)
        do {
            try journal.append(TrackingHit(
                token: token, kind: kind, occurredAt: occurredAt, ip: req.clientIP, userAgent: Self.userAgent(req),
                isHead: req.method == .HEAD, details: details))
        } catch is TrackingEventWriter.Journal.Full, is TrackingEventWriter.Journal.Closed, is JournalSegment.Failure {
            // Nothing was kept: the client (a mail client, a browser) is told to come back rather than told "done".
            var error = APIError(status: .serviceUnavailable, code: "SERVICE_UNAVAILABLE", message: "Busy; try again shortly.",
                                 details: nil)
            error.headers.replaceOrAdd(name: "Retry-After", value: "1")
            throw error
        }
    }

    /// Hits waiting for the database above which the next ones are paced: what a signed-in reader (`caughtUp`) waits
    /// for while tracking outruns the database, about 0.6 s at the 16,000 hits/s a 2-core machine writes. It is more
    /// than a batch (`TrackingEventWriter.batchSize`), so the flusher keeps writing full ones, its fastest.
    static let pacedBacklog = 10_000
    /// Past this many, a hit waits for room outright (the pace fell behind, or a burst came faster than it).
    static let backlog = 40_000
    static let roomWait: Duration = .seconds(2)

    /// The user agent as kept: its first 500 bytes (a count of characters would let combining marks through).
    static func userAgent(_ req: Request) -> String? {
        req.headers.first(name: .userAgent).map { String(decoding: $0.utf8.prefix(500), as: UTF8.self) }
    }

    /// A hit of a known simulation. The flusher also enrols a person (not a scanner) who clicked or submitted in the
    /// campaign's training module, when it writes the event.
    private func record(_ kind: String, token: String, campaignStatus: String, req: Request, details: String? = nil) async throws {
        guard TrackingEventWriter.recordingStatuses.contains(campaignStatus) else { return }
        try await keep(kind, token: token, req: req, details: details)
    }

    private func record(_ kind: String, _ target: TrackingTarget, req: Request, details: String? = nil) async throws {
        try await record(kind, token: target.token, campaignStatus: target.campaignStatus, req: req, details: details)
    }

    /// The pixel answers alike for any token; which simulation it names is worked out when the hit is written, a
    /// batch at a time.
    @Sendable func open(req: Request) async throws -> Response {
        if let token = TrackingTarget.plausibleToken(req.parameters.get("token")) { try await keep("open", token: token, req: req) }
        var headers = HTTPHeaders()
        headers.contentType = HTTPMediaType(type: "image", subType: "gif")
        headers.replaceOrAdd(name: .cacheControl, value: "no-store, no-cache, must-revalidate, max-age=0")
        headers.replaceOrAdd(name: .pragma, value: "no-cache")
        headers.replaceOrAdd(name: .expires, value: "0")
        return Response(status: .ok, headers: headers, body: .init(buffer: Self.pixel))
    }

    /// Redirects only to this campaign's own landing page, never to a URL taken from the request. A token minted with
    /// its campaign's id is answered from the cached campaign: a launched campaign's tracking URL never changes, and the
    /// flusher checks that the token names one of its simulations (and the campaign's status) when it writes the hit.
    /// Such a token with a made-up rest is redirected too, and its landing page is not found.
    @Sendable func click(req: Request) async throws -> Response {
        let location: String
        if let token = TrackingTarget.plausibleToken(req.parameters.get("token")), let id = TrackingTarget.campaignID(in: token) {
            // A draft has no simulations yet: its tracking URL is nobody's landing page, and the shared tracking host
            // must not redirect to it.
            guard let campaign = try await req.application.recordCache.find(PhishingCampaign.self, id, on: req.db),
                  campaign.status != "draft" else { return try notFoundPage(req) }
            try await record("click", token: token, campaignStatus: campaign.status, req: req)
            location = "\(campaign.trackingBaseURL)/phish/\(token)"
        } else {
            guard let target = try await target(req) else { return try notFoundPage(req) }
            try await record("click", target, req: req)
            location = "\(target.trackingBaseURL)/phish/\(target.token)"
        }
        let response = req.redirect(to: location)
        response.headers.replaceOrAdd(name: .cacheControl, value: "no-store")
        return response
    }

    @Sendable func landing(req: Request) async throws -> Response {
        guard let simulation = try await simulation(req),
              let template = try await PhishingTemplate.find(simulation.templateID, on: req.db) else { return try notFoundPage(req) }
        let context = TemplateRenderer.context(
            person: .init(firstName: simulation.firstName, lastName: simulation.lastName, email: simulation.email,
                          position: simulation.position, department: simulation.department),
            url: "/api/phishing/track/submit/\(simulation.token)", pixelURL: nil, from: template.senderName)
        let html = (try? TemplateRenderer.render(template.landingHTML, field: "landing_html", context: context)) ?? ""
        var headers = HTTPHeaders()
        headers.contentType = .html
        // Forms may post back to the tracker; no script runs, nothing is framed, nothing is cached.
        headers.replaceOrAdd(name: "Content-Security-Policy", value: "sandbox allow-forms; form-action 'self'; frame-ancestors 'none'")
        headers.replaceOrAdd(name: .cacheControl, value: "no-store")
        return Response(status: .ok, headers: headers, body: .init(string: html.isEmpty ? Self.defaultLanding(context) : html))
    }

    @Sendable func submit(req: Request) async throws -> Response {
        guard let target = try await target(req) else { return try notFoundPage(req) }
        let names = FormFields(req.body.string ?? "").names.filter {
            $0.range(of: Self.secretFieldPattern, options: [.regularExpression, .caseInsensitive]) == nil
        }
        let details = JSONValue.canonical(["fields": .array(Array(Set(names)).sorted().map(JSONValue.string))])
        try await record("submit", target, req: req, details: details)
        return try await teachableMoment(templateID: target.templateID, req: req)
    }

    @Sendable func report(req: Request) async throws -> Response {
        guard let target = try await target(req) else {
            let response = ErrorBody.response(for: APIError.notFound("Simulation"), on: req)
            Self.allowCORS(response)
            return response
        }
        try await record("report", target, req: req)
        struct Reported: Encodable { let reported = true; let message = "Thank you for reporting: this was a simulated phishing email." }
        let response = try req.envelope(Reported())
        Self.allowCORS(response)
        return response
    }

    @Sendable func reportPreflight(req: Request) async throws -> Response {
        let response = Response(status: .noContent)
        Self.allowCORS(response)
        return response
    }

    static func allowCORS(_ response: Response) {
        response.headers.replaceOrAdd(name: .accessControlAllowOrigin, value: "*")
        response.headers.replaceOrAdd(name: .accessControlAllowMethods, value: "POST, OPTIONS")
        response.headers.replaceOrAdd(name: .accessControlAllowHeaders, value: "Content-Type")
    }

    struct TrainingPayload: Encodable {
        struct Module: Encodable { let id: UUID; let title: String; let estimatedMinutes: Int }
        let campaign: String
        let templateName: String
        let subject: String
        let sender: String
        let redFlags: [String]
        @Nullable var trainingModule: Module?
        let reportUrl: String
    }

    /// Public: what the red flags were and which module to take.
    @Sendable func trainingPayload(req: Request) async throws -> Response {
        guard let simulation = try await simulation(req), let template = try await PhishingTemplate.find(simulation.templateID, on: req.db) else {
            throw APIError.notFound("Simulation")
        }
        var module: TrainingPayload.Module?
        if let id = simulation.campaign.trainingModuleID, let found = try await TrainingModule.find(id, on: req.db) {
            module = .init(id: found.id!, title: found.title, estimatedMinutes: found.estimatedMinutes)
        }
        return try req.envelope(TrainingPayload(campaign: simulation.campaign.name, templateName: template.name, subject: template.subject,
                                                sender: "\(template.senderName) <\(template.senderEmail)>", redFlags: template.redFlags,
                                                trainingModule: module, reportUrl: "/api/phishing/report/\(simulation.token)"))
    }

    struct FormConfig: Encodable {
        let fields: [String]
        let submitUrl: String
        let method = "POST"
        let recordsValues = false
    }

    @Sendable func formConfig(req: Request) async throws -> Response {
        guard let target = try await target(req), let template = try await PhishingTemplate.find(target.templateID, on: req.db) else {
            throw APIError.notFound("Simulation")
        }
        return try req.envelope(FormConfig(fields: template.landingFields, submitUrl: "/api/phishing/track/submit/\(target.token)"))
    }

    private func teachableMoment(templateID: UUID, req: Request) async throws -> Response {
        let template = try await PhishingTemplate.find(templateID, on: req.db)
        let flags = (template?.redFlags ?? []).map { "<li>\(HTML.escape($0))</li>" }.joined()
        let html = """
        <!doctype html><html lang="en"><head><meta charset="utf-8"><title>This was a phishing simulation</title>
        <link rel="stylesheet" href="/css/app.css"></head><body class="auth"><main class="card" id="teachable-moment">
        <h1>This was a simulation</h1><p>Nothing you typed was stored. This email was a training exercise from your organisation.</p>
        <h2>What could have warned you</h2><ul>\(flags)</ul>
        <p><a href="/learn">Take the short training</a></p></main></body></html>
        """
        var headers = HTTPHeaders()
        headers.contentType = .html
        headers.replaceOrAdd(name: .cacheControl, value: "no-store")
        return Response(status: .ok, headers: headers, body: .init(string: html))
    }

    private func notFoundPage(_ req: Request) throws -> Response {
        var headers = HTTPHeaders()
        headers.contentType = .html
        return Response(status: .notFound, headers: headers, body: .init(string: "<!doctype html><title>Not found</title><p>This link is not valid.</p>"))
    }

    static func defaultLanding(_ context: [String: Any]) -> String {
        let action = HTML.escape(context["url"] as? String ?? "")
        return """
        <!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head><body>
        <form method="post" action="\(action)"><label>Email <input name="email"></label>
        <label>Password <input type="password" name="password"></label><button type="submit">Sign in</button></form></body></html>
        """
    }

}
