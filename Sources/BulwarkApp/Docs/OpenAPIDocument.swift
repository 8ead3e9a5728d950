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
                    ]],
                ],
            ],
        ]
    }

    private static func describe(_ operation: APICatalog.Operation) -> [String: Any] {
        var parameters: [[String: Any]] = pathParameters(operation.path).map {
            ["name": $0, "in": "path", "required": true, "schema": ["type": "string"]]
        }
        parameters += operation.query.map { ["name": $0, "in": "query", "required": false, "schema": ["type": "string"]] }
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
        } else if operation.contentType == "text/csv" {
            result["requestBody"] = ["required": true, "content": ["text/csv": ["schema": ["type": "string"]],
                                                                    "multipart/form-data": ["schema": ["type": "object", "properties": ["file": ["type": "string", "format": "binary"]]]]]]
        }
        return result
    }

    private static func responses(_ operation: APICatalog.Operation) -> [String: Any] {
        let error: [String: Any] = ["content": ["application/json": ["schema": ["$ref": "#/components/schemas/Error"]]]]
        let successType = operation.contentType == "text/csv" ? "application/json" : operation.contentType
        var responses: [String: Any] = [
            String(operation.responseStatus): ["description": "Success", "content": [successType: ["schema": ["type": successType == "application/json" ? "object" : "string"]]]],
        ]
        if operation.path.hasPrefix("/api/") {
            responses["400"] = ["description": "Malformed request"].merging(error) { a, _ in a }
            responses["422"] = ["description": "Validation error"].merging(error) { a, _ in a }
            responses["429"] = ["description": "Rate limited"].merging(error) { a, _ in a }
        }
        if operation.auth {
            responses["401"] = ["description": "Authentication required"].merging(error) { a, _ in a }
            responses["403"] = ["description": "Insufficient permissions"].merging(error) { a, _ in a }
            responses["404"] = ["description": "Not found (including another tenant's ids)"].merging(error) { a, _ in a }
        }
        return responses
    }

    static func pathParameters(_ path: String) -> [String] {
        path.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) }
    }

    static func json() throws -> Data {
        try JSONSerialization.data(withJSONObject: build(), options: [.sortedKeys, .withoutEscapingSlashes])
    }
}
