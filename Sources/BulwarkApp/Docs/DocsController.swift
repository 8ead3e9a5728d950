import Vapor

/// /api/openapi.json and /api/docs.
struct DocsController: RouteCollection {
    func boot(routes: any RoutesBuilder) throws {
        routes.get("api", "openapi.json", use: openAPI)
        routes.get("api", "docs", use: docs)
    }

    @Sendable func openAPI(req: Request) async throws -> Response {
        var headers = HTTPHeaders()
        headers.contentType = .json
        return Response(status: .ok, headers: headers, body: .init(data: try OpenAPIDocument.json()))
    }

    /// A readable reference rendered on the server, no script needed.
    @Sendable func docs(req: Request) async throws -> Response {
        var html = """
        <!doctype html><html lang="en"><head><meta charset="utf-8"><title>Bulwark API</title>
        <link rel="stylesheet" href="/css/app.css"></head><body class="docs"><main>
        <h1>Bulwark API</h1><p>Machine-readable: <a href="/api/openapi.json">/api/openapi.json</a> (OpenAPI 3.1).
        Success bodies are <code>{"success": true, "data": …}</code>; lists add <code>pagination</code>; errors are
        <code>{"success": false, "error": {"code", "message", "details"}}</code>.</p>
        """
        let grouped = Dictionary(grouping: APICatalog.operations, by: \.tag)
        for tag in grouped.keys.sorted() {
            html += "<h2>\(HTML.escape(tag))</h2><table><thead><tr><th>Method</th><th>Path</th><th>What it does</th><th>Auth</th></tr></thead><tbody>"
            for operation in grouped[tag]! {
                var summary = HTML.escape(operation.summary)
                if !operation.query.isEmpty { summary += "<br><small>Query: \(HTML.escape(operation.query.joined(separator: ", ")))</small>" }
                if !operation.body.isEmpty {
                    let fields = operation.body.keys.sorted().map { operation.requiredBody.contains($0) ? "<b>\($0)</b>" : $0 }
                    summary += "<br><small>Body: \(fields.joined(separator: ", "))</small>"
                }
                html += "<tr><td><code>\(operation.method.rawValue)</code></td><td><code>\(HTML.escape(operation.path))</code></td><td>\(summary)</td><td>\(operation.auth ? "yes" : "none")</td></tr>"
            }
            html += "</tbody></table>"
        }
        html += "</main></body></html>"
        var headers = HTTPHeaders()
        headers.contentType = .html
        return Response(status: .ok, headers: headers, body: .init(string: html))
    }
}
