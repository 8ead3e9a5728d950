@testable import BulwarkApp
import Fluent
import Foundation
import Vapor

enum PhishingFactory {
    static func builtinTemplate(_ app: Application, key: String = "password-expiry") async throws -> PhishingTemplate {
        try await PhishingTemplate.query(on: app.db).filter(\.$builtinKey == key).first()!
    }

    /// A sending profile pointing at the SMTP fixture (plain SMTP on loopback).
    static func profile(_ app: Application, tenant: TestTenant, fixture: SMTPFixture, throttle: Int = 6000) async throws -> String {
        let response = try await app.send(.POST, "/api/v1/phishing/sending-profiles", token: tenant.token, json: [
            "name": "Fixture", "host": "127.0.0.1", "port": fixture.port, "security": "none",
            "envelope_from": "bounces@sim.acme.test", "throttle_per_minute": throttle, "headers": ["X-Simulation-Vendor": "Bulwark"],
        ])
        return JSON(response)["data"]["id"].string!
    }

    /// A launched campaign for the tenant's whole client.
    static func launched(_ app: Application, tenant: TestTenant, profileID: String, templates: [PhishingTemplate],
                         extra: [String: Any] = [:]) async throws -> String {
        var body: [String: Any] = ["name": "Simulation \(UUID().uuidString.prefix(4))", "template_ids": templates.map { $0.id!.uuidString },
                                   "sending_profile_id": profileID, "tracking_url": "https://phish.acme.test"]
        body.merge(extra) { $1 }
        let created = JSON(try await app.send(.POST, "/api/v1/phishing/campaigns", token: tenant.token, json: body))
        let id = created["data"]["id"].string!
        _ = try await app.send(.POST, "/api/v1/phishing/campaigns/\(id)/send", token: tenant.token)
        return id
    }

    static func simulations(_ app: Application, campaign: String) async throws -> [Simulation] {
        try await Simulation.query(on: app.db).filter(\.$campaign.$id == UUID(uuidString: campaign)!).sort(\.$email).all()
    }
}
