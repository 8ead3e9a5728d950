import Foundation
import Fluent
import SQLKit

/// What the tracking routes need to know about the simulation a token names, read in one indexed query. The open
/// pixel and the click redirect are the highest-rate routes of the product; loading the `Simulation` and its
/// `PhishingCampaign` through Fluent cost two queries, each serialising every column name and reflecting over the
/// model (about a third of the route's CPU under `perf`).
struct TrackingTarget: Sendable {
    let simulationID: UUID
    let campaignID: UUID
    let clientID: UUID
    let userID: UUID
    let templateID: UUID
    let token: String
    let sentAt: Date?
    let campaignStatus: String
    let trackingBaseURL: String
    let trainingModuleID: UUID?

    /// The token of a tracking path, if it can name a simulation at all (16 to 64 characters): anything else costs no
    /// query.
    static func plausibleToken(_ token: String?) -> String? {
        guard let token, (16...64).contains(token.utf8.count) else { return nil }
        return token
    }

    static func find(token: String?, on db: any Database) async throws -> TrackingTarget? {
        guard let token = plausibleToken(token) else { return nil }
        let row = try await db.sql.raw("""
            SELECT s.id, s.campaign_id, s.client_id, s.user_id, s.template_id, s.sent_at,
                   c.status, c.tracking_base_url, c.training_module_id
            FROM phishing_simulations s JOIN phishing_campaigns c ON c.id = s.campaign_id
            WHERE s.token = \(bind: token)
            """).first()
        guard let row else { return nil }
        let moduleID: UUID? = try row.decodeNil(column: "training_module_id") ? nil : row.decodeUUID(column: "training_module_id")
        return TrackingTarget(
            simulationID: try row.decodeUUID(column: "id"), campaignID: try row.decodeUUID(column: "campaign_id"),
            clientID: try row.decodeUUID(column: "client_id"), userID: try row.decodeUUID(column: "user_id"),
            templateID: try row.decodeUUID(column: "template_id"), token: token,
            sentAt: try row.decode(column: "sent_at", as: Date?.self),
            campaignStatus: try row.decode(column: "status", as: String.self),
            trackingBaseURL: try row.decode(column: "tracking_base_url", as: String.self), trainingModuleID: moduleID)
    }
}
