import Fluent
import Prometheus
import SQLKit
import Vapor

/// /health (process up), /ready (database reachable), /metrics (Prometheus text).
struct OpsController: RouteCollection {
    struct Health: Encodable { let status: String }

    func boot(routes: any RoutesBuilder) throws {
        routes.get("health", use: health)
        routes.get("ready", use: ready)
        routes.get("metrics", use: metrics)
    }

    @Sendable func health(req: Request) async throws -> Response {
        try req.envelope(Health(status: "ok"))
    }

    @Sendable func ready(req: Request) async throws -> Response {
        do {
            _ = try await req.db.sql.raw("SELECT 1 AS ok").first()
        } catch {
            throw APIError(status: .serviceUnavailable, code: "INTERNAL_ERROR", message: "The database is not reachable.", details: nil)
        }
        return try req.envelope(Health(status: "ready"))
    }

    @Sendable func metrics(req: Request) async throws -> Response {
        var headers = HTTPHeaders()
        headers.contentType = HTTPMediaType(type: "text", subType: "plain", parameters: ["version": "0.0.4", "charset": "utf-8"])
        return Response(status: .ok, headers: headers, body: .init(string: BulwarkMetrics.registry.emitToString()))
    }
}
