@testable import BulwarkApp
import Testing
import Vapor
import VaporTesting

@Suite struct OpenAPITests {
    @Test func everyRegisteredRouteIsDocumented() async throws {
        try await withBulwark { app in
            let documented = Set(APICatalog.operations.map { "\($0.method.rawValue) \($0.path)" })
            let registered = app.routes.all
                .map { route -> String in
                    let path = "/" + route.path.map { component -> String in
                        if case let .parameter(name) = component { return "{\(name)}" }
                        return component.description
                    }.joined(separator: "/")
                    return "\(route.method.rawValue) \(path)"
                }
                .filter { $0.contains(" /api/") || $0.hasSuffix(" /health") || $0.hasSuffix(" /ready") || $0.hasSuffix(" /metrics") }
            let missing = Set(registered).subtracting(documented)
            #expect(missing.isEmpty, "undocumented routes: \(missing.sorted())")
            let stale = documented.subtracting(registered)
            #expect(stale.isEmpty, "documented but not registered: \(stale.sorted())")
        }
    }

    @Test func servesTheDocumentAndTheReadablePage() async throws {
        try await withBulwark { app in
            let document = JSON(try await app.send(.GET, "/api/openapi.json"))
            #expect(document["openapi"].string == "3.1.0")
            #expect(document["paths"]["/api/v1/users/{id}"]["get"]["parameters"][0]["name"].string == "id")
            let page = try await app.send(.GET, "/api/docs")
            #expect(page.status == .ok)
            #expect(page.body.string.contains("/api/v3/companies/{companyId}/clients"))
        }
    }
}
