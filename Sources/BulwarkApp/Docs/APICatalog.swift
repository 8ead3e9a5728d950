import Vapor

/// Hand-kept catalogue of every API operation: the source of the OpenAPI document. A test compares it with the
/// registered routes, so a route added without documenting it fails the suite.
enum APICatalog {
    struct Operation: Sendable {
        let method: HTTPMethod
        let path: String
        let summary: String
        let tag: String
        let auth: Bool
        var query: [String] = []
        var body: [String: String] = [:]
        var requiredBody: [String] = []
        var responseStatus: Int = 200
        /// What a success answers with. `text/csv` marks an export, which answers JSON too with `format=json`.
        var contentType = "application/json"
        /// A non-JSON request body (the CSV import).
        var requestContentType: String? = nil
        /// Error statuses a public route answers besides the ones every route of its kind does (a sign-in's 401).
        var extraStatuses: [Int] = []
    }

    static let pageQuery = ["page", "per_page"]

    static let operations: [Operation] = [
        // Seed 002
        .init(method: .GET, path: "/api/v3/auth/user", summary: "The authenticated user's profile, role, company and permissions", tag: "Auth (v3)", auth: true),
        .init(method: .POST, path: "/api/v3/auth/logout-user", summary: "Log out: revoke the presented session or token", tag: "Auth (v3)", auth: true),
        .init(method: .GET, path: "/api/v3/auth/logout-user", summary: "Log out (the seed names no method; GET works too)", tag: "Auth (v3)", auth: true),
        .init(method: .GET, path: "/api/v4/users", summary: "Users the caller may see", tag: "Users (v4)", auth: true,
              query: pageQuery + ["cursor", "role", "company_id"]),
        .init(method: .GET, path: "/api/v3/companies", summary: "Companies the caller may see", tag: "Companies", auth: true, query: pageQuery),
        .init(method: .GET, path: "/api/v3/companies/{companyId}", summary: "One company", tag: "Companies", auth: true),
        .init(method: .GET, path: "/api/v3/companies/{companyId}/clients", summary: "Clients of a company", tag: "Clients", auth: true,
              query: pageQuery + ["status", "search"]),
        .init(method: .POST, path: "/api/v3/companies/{companyId}/clients", summary: "Create a client", tag: "Clients", auth: true,
              body: ["name": "string", "status": "string", "city": "string", "state": "string", "country": "string",
                     "email_delivery_settings": "string", "industry": "string", "employee_count": "integer"],
              requiredBody: ["name"], responseStatus: 201),
        // Seed 000
        .init(method: .GET, path: "/api/v1/users", summary: "List users with pagination and filtering", tag: "Users", auth: true,
              query: pageQuery + ["cursor", "search", "role", "status", "department", "manager_id", "sort"]),
        .init(method: .POST, path: "/api/v1/users", summary: "Create a user", tag: "Users", auth: true,
              body: userBody, requiredBody: ["first_name", "last_name", "email"], responseStatus: 201),
        .init(method: .POST, path: "/api/v1/users/import", summary: "Import users from CSV (first_name,last_name,email,position,department,manager_email)",
              tag: "Users", auth: true, requestContentType: "text/csv"),
        .init(method: .GET, path: "/api/v1/users/{id}", summary: "Get a user", tag: "Users", auth: true),
        .init(method: .PUT, path: "/api/v1/users/{id}", summary: "Update a user", tag: "Users", auth: true, body: userBody),
        .init(method: .DELETE, path: "/api/v1/users/{id}", summary: "Delete a user (history stays, pseudonymous); deactivate with PUT status",
              tag: "Users", auth: true),
        .init(method: .GET, path: "/api/v1/api-keys", summary: "List API keys", tag: "API keys", auth: true, query: pageQuery),
        .init(method: .POST, path: "/api/v1/api-keys", summary: "Create an API key (the key is shown once)", tag: "API keys", auth: true,
              body: ["name": "string", "role": "string", "company_wide": "boolean"], requiredBody: ["name"], responseStatus: 201),
        .init(method: .DELETE, path: "/api/v1/api-keys/{id}", summary: "Revoke an API key", tag: "API keys", auth: true),
        .init(method: .GET, path: "/api/v1/audit-logs", summary: "Query audit logs", tag: "Audit", auth: true,
              query: pageQuery + ["actor", "action", "target", "from", "to"]),
        .init(method: .POST, path: "/api/v1/audit-logs", summary: "Create a custom audit entry", tag: "Audit", auth: true,
              body: ["action": "string", "target_type": "string", "target_id": "string", "details": "object"],
              requiredBody: ["action"], responseStatus: 201),
        .init(method: .GET, path: "/api/v1/users/overdue", summary: "Users with overdue training", tag: "Users", auth: true,
              query: pageQuery + ["department", "manager_id"]),
        .init(method: .GET, path: "/api/v1/modules", summary: "List training modules (built-in library and your own)", tag: "Modules", auth: true,
              query: pageQuery + ["search", "category", "difficulty", "builtin"]),
        .init(method: .POST, path: "/api/v1/modules", summary: "Create a module, or copy one with source_module_id", tag: "Modules", auth: true,
              body: moduleBody, requiredBody: ["title", "category", "lessons"], responseStatus: 201),
        .init(method: .GET, path: "/api/v1/modules/{id}", summary: "Get a module with lessons and questions", tag: "Modules", auth: true),
        .init(method: .PUT, path: "/api/v1/modules/{id}", summary: "Update a module (not built-ins)", tag: "Modules", auth: true, body: moduleBody),
        .init(method: .DELETE, path: "/api/v1/modules/{id}", summary: "Delete (archive) a module", tag: "Modules", auth: true),
        .init(method: .GET, path: "/api/v1/campaigns", summary: "List training campaigns", tag: "Campaigns", auth: true,
              query: pageQuery + ["status", "search"]),
        .init(method: .POST, path: "/api/v1/campaigns", summary: "Create a campaign", tag: "Campaigns", auth: true,
              body: campaignBody, requiredBody: ["name", "module_ids", "due_at"], responseStatus: 201),
        .init(method: .GET, path: "/api/v1/campaigns/{id}", summary: "Get a campaign with live figures", tag: "Campaigns", auth: true),
        .init(method: .PUT, path: "/api/v1/campaigns/{id}", summary: "Update a campaign or change its status", tag: "Campaigns", auth: true, body: campaignBody),
        .init(method: .DELETE, path: "/api/v1/campaigns/{id}", summary: "Delete a campaign (one that ran stops; its results stay in reports)",
              tag: "Campaigns", auth: true),
        .init(method: .GET, path: "/api/v1/me/assignments", summary: "My training assignments", tag: "Learning", auth: true,
              query: pageQuery + ["status"]),
        .init(method: .GET, path: "/api/v1/me/assignments/{id}", summary: "Open an assignment: lessons and quiz (no answers)", tag: "Learning", auth: true),
        .init(method: .POST, path: "/api/v1/me/assignments/{id}/lessons/{lessonId}/complete", summary: "Mark a lesson done", tag: "Learning", auth: true),
        .init(method: .POST, path: "/api/v1/me/assignments/{id}/quiz", summary: "Submit quiz answers (scored on the server)", tag: "Learning", auth: true,
              body: ["answers": "array"], requiredBody: ["answers"]),
        .init(method: .GET, path: "/api/v1/me/assignments/{id}/certificate", summary: "Completion certificate (HTML)", tag: "Learning", auth: true,
              contentType: "text/html"),
        .init(method: .GET, path: "/api/v1/certificates/{code}", summary: "Verify a certificate code (public)", tag: "Learning", auth: false),
        .init(method: .GET, path: "/api/v1/team", summary: "Direct reports (depth=all: all levels) with compliance status", tag: "Team", auth: true,
              query: pageQuery + ["depth"]),
        .init(method: .GET, path: "/api/v1/team/stats", summary: "Team compliance statistics", tag: "Team", auth: true, query: ["depth"]),
        .init(method: .GET, path: "/api/v1/team/export", summary: "Team compliance report (CSV or JSON, streamed)", tag: "Team", auth: true,
              query: ["depth", "format"],
              contentType: "text/csv"),
        .init(method: .GET, path: "/api/v1/escalation/settings", summary: "Escalation settings", tag: "Escalations", auth: true),
        .init(method: .PUT, path: "/api/v1/escalation/settings", summary: "Update escalation settings", tag: "Escalations", auth: true,
              body: ["enabled": "boolean", "learner_after_days": "integer", "manager_after_days": "integer", "admin_after_days": "integer",
                     "quiet_hours_start": "integer", "quiet_hours_end": "integer", "timezone": "string"]),
        .init(method: .GET, path: "/api/v1/escalation/history", summary: "Escalation history", tag: "Escalations", auth: true,
              query: pageQuery + ["step", "user_id", "acknowledged"]),
        .init(method: .POST, path: "/api/v1/escalation/acknowledge/{id}", summary: "Acknowledge an escalation", tag: "Escalations", auth: true),
        .init(method: .GET, path: "/api/v1/leaderboard", summary: "Organisation leaderboard", tag: "Leaderboard", auth: true,
              query: pageQuery + ["period", "by"]),
        .init(method: .GET, path: "/api/v1/leaderboard/settings", summary: "Leaderboard settings", tag: "Leaderboard", auth: true),
        .init(method: .PUT, path: "/api/v1/leaderboard/settings", summary: "Show names or initials on the leaderboard", tag: "Leaderboard", auth: true,
              body: ["show_names": "boolean"], requiredBody: ["show_names"]),
        .init(method: .GET, path: "/api/v1/export/training-completion", summary: "Export training completion records (streamed)", tag: "Export", auth: true,
              query: ["format", "from", "to", "campaign_id", "status"], contentType: "text/csv"),
        .init(method: .GET, path: "/api/v1/export/audit-logs", summary: "Export the audit trail (streamed)", tag: "Export", auth: true,
              query: ["format", "from", "to", "action"], contentType: "text/csv"),
        .init(method: .GET, path: "/api/v1/phishing/templates", summary: "List phishing templates", tag: "Phishing", auth: true,
              query: pageQuery + ["category", "difficulty", "builtin", "search"]),
        .init(method: .POST, path: "/api/v1/phishing/templates", summary: "Create a template (or copy one with source_template_id)", tag: "Phishing",
              auth: true, body: templateBody, requiredBody: ["name", "category", "subject", "sender_name", "sender_email", "html"], responseStatus: 201),
        .init(method: .GET, path: "/api/v1/phishing/templates/{id}", summary: "Get a phishing template", tag: "Phishing", auth: true),
        .init(method: .PUT, path: "/api/v1/phishing/templates/{id}", summary: "Update a phishing template", tag: "Phishing", auth: true, body: templateBody),
        .init(method: .DELETE, path: "/api/v1/phishing/templates/{id}", summary: "Delete a phishing template", tag: "Phishing", auth: true),
        .init(method: .GET, path: "/api/v1/phishing/templates/{id}/preview", summary: "Render a template for a sample person (sandboxed HTML)",
              tag: "Phishing", auth: true, query: ["part"], contentType: "text/html"),
        .init(method: .GET, path: "/api/v1/phishing/sending-profiles", summary: "List sending profiles", tag: "Phishing", auth: true, query: pageQuery),
        .init(method: .POST, path: "/api/v1/phishing/sending-profiles", summary: "Create a sending profile", tag: "Phishing", auth: true,
              body: profileBody, requiredBody: ["name", "host", "envelope_from"], responseStatus: 201),
        .init(method: .GET, path: "/api/v1/phishing/sending-profiles/{id}", summary: "Get a sending profile (password never returned)", tag: "Phishing", auth: true),
        .init(method: .PUT, path: "/api/v1/phishing/sending-profiles/{id}", summary: "Update a sending profile", tag: "Phishing", auth: true, body: profileBody),
        .init(method: .DELETE, path: "/api/v1/phishing/sending-profiles/{id}", summary: "Delete a sending profile", tag: "Phishing", auth: true),
        .init(method: .POST, path: "/api/v1/phishing/sending-profiles/{id}/test", summary: "Send a test message", tag: "Phishing", auth: true,
              body: ["to": "string"], requiredBody: ["to"]),
        .init(method: .GET, path: "/api/v1/phishing/campaigns", summary: "List phishing campaigns", tag: "Phishing", auth: true, query: pageQuery + ["status"]),
        .init(method: .POST, path: "/api/v1/phishing/campaigns", summary: "Create phishing campaign", tag: "Phishing", auth: true,
              body: phishingCampaignBody, requiredBody: ["name", "template_ids"], responseStatus: 201),
        .init(method: .GET, path: "/api/v1/phishing/campaigns/{id}", summary: "Get campaign details and sending progress", tag: "Phishing", auth: true),
        .init(method: .PUT, path: "/api/v1/phishing/campaigns/{id}", summary: "Update a draft campaign", tag: "Phishing", auth: true, body: phishingCampaignBody),
        .init(method: .DELETE, path: "/api/v1/phishing/campaigns/{id}", summary: "Cancel campaign (unsent messages stop; results stay)", tag: "Phishing", auth: true),
        .init(method: .POST, path: "/api/v1/phishing/campaigns/{id}/send", summary: "Send campaign", tag: "Phishing", auth: true),
        .init(method: .POST, path: "/api/v1/phishing/campaigns/{id}/complete", summary: "Complete campaign", tag: "Phishing", auth: true),
        .init(method: .GET, path: "/api/v1/phishing/campaigns/{id}/results", summary: "Get campaign results (by last name, first name)",
              tag: "Phishing", auth: true, query: pageQuery + ["cursor", "status", "department"]),
        .init(method: .GET, path: "/api/v1/phishing/campaigns/{id}/export", summary: "Export campaign results (CSV/JSON, streamed)", tag: "Phishing",
              auth: true, query: ["format", "status", "department"], contentType: "text/csv"),
        .init(method: .GET, path: "/api/v1/phishing/stats", summary: "Get phishing program statistics", tag: "Phishing", auth: true, query: ["from", "to"]),
        .init(method: .GET, path: "/api/v1/phishing/simulations/{id}", summary: "Get individual phishing simulation details", tag: "Phishing", auth: true),
        .init(method: .GET, path: "/api/v1/phishing/training/{token}", summary: "Get token-based training payload (public)", tag: "Phishing tracking", auth: false),
        .init(method: .GET, path: "/api/v1/phishing/training/{token}/form", summary: "Get token-based form config (public)", tag: "Phishing tracking", auth: false),
        .init(method: .POST, path: "/api/phishing/track/submit/{token}", summary: "Track form submission (public; field names only)", tag: "Phishing tracking",
              auth: false, contentType: "text/html"),
        .init(method: .POST, path: "/api/phishing/report/{token}", summary: "Report simulation (public, CORS)", tag: "Phishing tracking", auth: false),
        .init(method: .OPTIONS, path: "/api/phishing/report/{token}", summary: "CORS preflight for reporting", tag: "Phishing tracking", auth: false,
              responseStatus: 204),
        .init(method: .GET, path: "/api/phishing/track/click/{token}", summary: "Track click + redirect to the campaign's landing page (public)",
              tag: "Phishing tracking", auth: false, responseStatus: 303, contentType: "text/html"),
        .init(method: .GET, path: "/api/phishing/track/open/{token}", summary: "Tracking pixel (public; the pixel whatever the token)",
              tag: "Phishing tracking", auth: false, contentType: "image/gif"),
        // Seed 001 (camelCase)
        .init(method: .POST, path: "/api/auth/register", summary: "Register a new user and organisation", tag: "Auth", auth: false,
              body: ["email": "string", "password": "string", "firstName": "string", "lastName": "string", "companyName": "string"],
              requiredBody: ["email", "password", "firstName", "lastName"], responseStatus: 201, extraStatuses: [409, 422]),
        .init(method: .POST, path: "/api/auth/login", summary: "Sign in: session cookie and bearer token", tag: "Auth", auth: false,
              body: ["email": "string", "password": "string", "totpCode": "string"], requiredBody: ["email", "password"],
              extraStatuses: [401, 422]),
        .init(method: .POST, path: "/api/auth/logout", summary: "Sign out", tag: "Auth", auth: true),
        .init(method: .POST, path: "/api/auth/totp/setup", summary: "Start two-factor enrolment", tag: "Auth", auth: true),
        .init(method: .POST, path: "/api/auth/totp/enable", summary: "Confirm two-factor enrolment with a code", tag: "Auth", auth: true,
              body: ["code": "string"], requiredBody: ["code"]),
        .init(method: .POST, path: "/api/auth/totp/disable", summary: "Turn two-factor sign-in off", tag: "Auth", auth: true,
              body: ["code": "string"], requiredBody: ["code"]),
        // Operations
        .init(method: .GET, path: "/api/openapi.json", summary: "This document", tag: "Meta", auth: false),
        .init(method: .GET, path: "/api/docs", summary: "Readable API reference", tag: "Meta", auth: false, contentType: "text/html"),
        .init(method: .GET, path: "/health", summary: "Process is up", tag: "Meta", auth: false),
        .init(method: .GET, path: "/ready", summary: "Database is reachable", tag: "Meta", auth: false),
        .init(method: .GET, path: "/metrics", summary: "Prometheus metrics", tag: "Meta", auth: false, contentType: "text/plain"),
    ]

    static let moduleBody: [String: String] = [
        "source_module_id": "string", "title": "string", "summary": "string", "category": "string", "difficulty": "string",
        "estimated_minutes": "integer", "locale": "string", "pass_mark": "integer", "max_attempts": "integer",
        "lessons": "array", "questions": "array",
    ]

    static let campaignBody: [String: String] = [
        "name": "string", "description": "string", "module_ids": "array", "audience": "object", "start_at": "string",
        "due_at": "string", "reminder_days": "array", "auto_enroll": "boolean", "status": "string",
    ]

    static let templateBody: [String: String] = [
        "source_template_id": "string", "name": "string", "category": "string", "difficulty": "string", "locale": "string",
        "subject": "string", "sender_name": "string", "sender_email": "string", "html": "string", "text": "string",
        "landing_html": "string", "landing_fields": "array", "red_flags": "array",
    ]

    static let profileBody: [String: String] = [
        "name": "string", "host": "string", "port": "integer", "security": "string", "username": "string", "password": "string",
        "envelope_from": "string", "headers": "object", "throttle_per_minute": "integer",
    ]

    static let phishingCampaignBody: [String: String] = [
        "name": "string", "template_ids": "array", "template_assignment": "string", "audience": "object",
        "sending_profile_id": "string", "launch_at": "string", "send_by": "string", "throttle_per_minute": "integer",
        "training_module_id": "string", "tracking_url": "string",
    ]

    static let userBody: [String: String] = [
        "first_name": "string", "last_name": "string", "email": "string", "position": "string", "department": "string",
        "manager_id": "string", "locale": "string", "status": "string", "role": "string", "password": "string",
    ]
}
