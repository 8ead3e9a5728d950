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
        var contentType = "application/json"
    }

    static let pageQuery = ["page", "per_page"]

    static let operations: [Operation] = [
        // Seed 002
        .init(method: .GET, path: "/api/v3/auth/user", summary: "The authenticated user's profile, role, company and permissions", tag: "Auth (v3)", auth: true),
        .init(method: .POST, path: "/api/v3/auth/logout-user", summary: "Log out and invalidate the session or token", tag: "Auth (v3)", auth: true),
        .init(method: .GET, path: "/api/v4/users", summary: "Users the caller may see", tag: "Users (v4)", auth: true,
              query: pageQuery + ["role", "company_id"]),
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
              query: pageQuery + ["search", "role", "status", "department", "manager_id", "sort"]),
        .init(method: .POST, path: "/api/v1/users", summary: "Create a user", tag: "Users", auth: true,
              body: userBody, requiredBody: ["first_name", "last_name", "email"], responseStatus: 201),
        .init(method: .POST, path: "/api/v1/users/import", summary: "Import users from CSV (first_name,last_name,email,position,department,manager_email)",
              tag: "Users", auth: true, contentType: "text/csv"),
        .init(method: .GET, path: "/api/v1/users/{id}", summary: "Get a user", tag: "Users", auth: true),
        .init(method: .PUT, path: "/api/v1/users/{id}", summary: "Update a user", tag: "Users", auth: true, body: userBody),
        .init(method: .DELETE, path: "/api/v1/users/{id}", summary: "Deactivate a user (hard=true erases)", tag: "Users", auth: true, query: ["hard"]),
        .init(method: .GET, path: "/api/v1/api-keys", summary: "List API keys", tag: "API keys", auth: true, query: pageQuery),
        .init(method: .POST, path: "/api/v1/api-keys", summary: "Create an API key (the key is shown once)", tag: "API keys", auth: true,
              body: ["name": "string", "role": "string", "company_wide": "boolean"], requiredBody: ["name"], responseStatus: 201),
        .init(method: .DELETE, path: "/api/v1/api-keys/{id}", summary: "Revoke an API key", tag: "API keys", auth: true),
        .init(method: .GET, path: "/api/v1/audit-logs", summary: "Query audit logs", tag: "Audit", auth: true,
              query: pageQuery + ["actor", "action", "target", "from", "to"]),
        .init(method: .POST, path: "/api/v1/audit-logs", summary: "Create a custom audit entry", tag: "Audit", auth: true,
              body: ["action": "string", "target_type": "string", "target_id": "string", "details": "object"],
              requiredBody: ["action"], responseStatus: 201),
        // Seed 001 (camelCase)
        .init(method: .POST, path: "/api/auth/register", summary: "Register a new user and organisation", tag: "Auth", auth: false,
              body: ["email": "string", "password": "string", "firstName": "string", "lastName": "string", "companyName": "string"],
              requiredBody: ["email", "password", "firstName", "lastName"], responseStatus: 201),
        .init(method: .POST, path: "/api/auth/login", summary: "Sign in: session cookie and bearer token", tag: "Auth", auth: false,
              body: ["email": "string", "password": "string", "totpCode": "string"], requiredBody: ["email", "password"]),
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

    static let userBody: [String: String] = [
        "first_name": "string", "last_name": "string", "email": "string", "position": "string", "department": "string",
        "manager_id": "string", "locale": "string", "status": "string", "role": "string", "password": "string",
    ]
}
