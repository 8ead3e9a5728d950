import Vapor

/// Builds the OpenAPI 3.1 document from `APICatalog`.
enum OpenAPIDocument {
    static func build() -> [String: Any] {
        var paths: [String: [String: Any]] = [:]
        for operation in APICatalog.operations {
            var item = paths[operation.path] ?? [:]
            item[operation.method.rawValue.lowercased()] = describe(operation)
            paths[operation.path] = item
        }
        return [
            "openapi": "3.1.0",
            "info": ["title": "Bulwark API", "version": "1.0.0",
                     "description": "Security awareness (/api/v1), tabletop exercises (/api/ttx, /api/portal, /api/auth, /api/threat-intel) and MSP compliance (/api/v3, /api/v4) over one domain model."],
            "paths": paths,
            "components": [
                "securitySchemes": [
                    "bearer": ["type": "http", "scheme": "bearer", "description": "API key (bwk_…), Bulwark JWT or OIDC token"],
                    "cookie": ["type": "apiKey", "in": "cookie", "name": PrincipalAuthenticator.cookieName],
                ],
                "schemas": [
                    "Error": ["type": "object", "properties": [
                        "success": ["type": "boolean", "const": false],
                        "error": ["type": "object", "properties": [
                            "code": ["type": "string"], "message": ["type": "string"],
                            "details": ["type": "object", "additionalProperties": ["type": "array", "items": ["type": "string"]]],
                        ]],
                    ]],
                    "Pagination": ["type": "object", "properties": [
                        "current_page": ["type": "integer"], "per_page": ["type": "integer"],
                        "total": ["type": "integer"], "last_page": ["type": "integer"],
                        "total_estimated": ["type": "boolean", "description": "Present (true) when total is the count of a moment ago: lists above 10,000 rows, and smaller lists whose count takes long (a filter no index serves, in a large list)"],
                        "next_cursor": ["type": "string", "description": "Lists with cursor paging: pass as cursor for the next page; absent on the last. With a cursor, current_page is 1 and last_page counts pages from the start"],
                    ]],
                ],
            ],
        ]
    }

    private static func describe(_ operation: APICatalog.Operation) -> [String: Any] {
        var parameters: [[String: Any]] = pathParameters(operation.path).map {
            ["name": $0, "in": "path", "required": true, "schema": ["type": "string"]]
        }
        parameters += operation.query.map { ["name": $0, "in": "query", "required": false, "schema": QueryParameter.schema($0)] }
        var result: [String: Any] = [
            "summary": operation.summary,
            "tags": [operation.tag],
            "parameters": parameters,
            "responses": responses(operation),
        ]
        if operation.auth { result["security"] = [["bearer": [String]()], ["cookie": [String]()]] }
        if !operation.body.isEmpty {
            result["requestBody"] = ["required": true, "content": ["application/json": ["schema": [
                "type": "object",
                "properties": operation.body.mapValues { ["type": $0] },
                "required": operation.requiredBody,
            ]]]]
        } else if operation.requestContentType == "text/csv" {
            result["requestBody"] = ["required": true, "content": ["text/csv": ["schema": ["type": "string"]],
                                                                    "multipart/form-data": ["schema": ["type": "object", "properties": ["file": ["type": "string", "format": "binary"]]]]]]
        }
        return result
    }

    /// Every status the route can answer, as its family answers them: seed 000's family answers validation errors and
    /// conflicts with 400; seed 002's and the tabletop family with 422 and 409.
    private static func responses(_ operation: APICatalog.Operation) -> [String: Any] {
        let error: [String: Any] = ["content": ["application/json": ["schema": ["$ref": "#/components/schemas/Error"]]]]
        func failure(_ description: String) -> [String: Any] { ["description": description].merging(error) { a, _ in a } }
        var responses: [String: Any] = [String(operation.responseStatus): success(operation)]
        let family = RouteFamily(path: operation.path)
        let isAPI = operation.path.hasPrefix("/api/")
        let hasInput = !operation.body.isEmpty || !operation.query.isEmpty || operation.requestContentType != nil
            || !pathParameters(operation.path).isEmpty || operation.method == .POST || operation.method == .PUT
        if isAPI, hasInput {
            responses["400"] = failure(family == .awareness
                ? "Bad request: malformed body, invalid parameters, validation error (details per field) or conflict"
                : "Bad request: malformed body or invalid query parameters")
        }
        if operation.auth {
            responses["401"] = failure("Authentication required")
            responses["403"] = failure("Insufficient permissions, or a cookie-authenticated change without the CSRF token")
        }
        if operation.contentType == "image/gif" {
            // The pixel answers an image whatever the token, so mail clients show nothing broken.
        } else if operation.contentType == "text/html" && !operation.auth {
            if !pathParameters(operation.path).isEmpty {
                responses["404"] = ["description": "Unknown token (an HTML page)", "content": ["text/html": ["schema": ["type": "string"]]]]
            }
        } else if operation.auth || !pathParameters(operation.path).isEmpty {
            responses["404"] = failure("Not found (including another tenant's ids)")
        }
        if family == .scorecard || family == .tabletop, [.POST, .PUT, .DELETE].contains(operation.method) {
            responses["409"] = failure("Conflict with the resource's current state")
            responses["422"] = failure("Validation error (details per field)")
        }
        if RateCategory.of(method: operation.method, path: operation.path) != nil {
            responses["429"] = failure("Rate limited (Retry-After)")
        }
        for status in operation.extraStatuses where responses[String(status)] == nil {
            responses[String(status)] = failure(status == 401 ? "Wrong credentials or a missing or wrong second factor"
                                                : status == 409 ? "Conflict (already exists)" : "Validation error (details per field)")
        }
        responses["500"] = failure("Internal error")
        return responses
    }

    private static func success(_ operation: APICatalog.Operation) -> [String: Any] {
        let description = operation.responseStatus == 201 ? "Created" : (operation.responseStatus == 303 ? "Redirect" : "Success")
        if operation.responseStatus == 204 || operation.responseStatus == 303 { return ["description": description] }
        let content: [String: Any]
        switch operation.contentType {
        case "application/json":
            content = ["application/json": ["schema": ["type": "object"]]]
        case "text/csv":
            content = ["text/csv": ["schema": ["type": "string"]],
                       "application/json": ["schema": ["type": "object", "description": "With format=json: the rows in the envelope"]]]
        case "image/gif":
            content = ["image/gif": ["schema": ["type": "string", "format": "binary"]]]
        default:
            content = [operation.contentType: ["schema": ["type": "string"]]]
        }
        return ["description": description, "content": content]
    }

    static func pathParameters(_ path: String) -> [String] {
        path.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) }
    }

    static func json() throws -> Data {
        try JSONSerialization.data(withJSONObject: build(), options: [.sortedKeys, .withoutEscapingSlashes])
    }
}
