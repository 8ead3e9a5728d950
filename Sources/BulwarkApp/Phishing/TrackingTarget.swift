import Foundation
import Fluent
import SQLKit
import Vapor

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

    /// The token of a tracking path, if it can name a simulation at all (16 to 64 characters of the URL-safe base64
    /// alphabet `RandomToken` writes): anything else costs no query and never reaches the journal or a shared lookup
    /// (a NUL, which PostgreSQL refuses in text, would fail every token looked up with it).
    static func plausibleToken(_ token: String?) -> String? {
        guard let token, (16...64).contains(token.utf8.count), token.utf8.allSatisfy(RandomToken.isBase64URLDigit) else { return nil }
        return token
    }

    /// A launch's token for one simulation: the campaign's id (22 characters) then 24 random bytes (32 characters).
    /// A click redirects to its campaign's landing page, which `campaignID(in:)` finds from the token alone (through the
    /// record cache), so the busiest route after the pixel needs no lookup of its simulation while it is answered. The
    /// prefix is the same in all of a campaign's emails (and ids are not secrets); the secret is the rest.
    static func mint(campaignID: UUID) -> String {
        withUnsafeBytes(of: campaignID.uuid) { RandomToken.base64URL($0) } + RandomToken.make(bytes: 24)
    }

    static let mintedLength = 54

    /// The campaign a minted token names in its first 22 characters (a token of another length, from before tokens
    /// carried it, names none).
    static func campaignID(in token: String) -> UUID? {
        guard token.utf8.count == mintedLength else { return nil }
        guard let bytes = RandomToken.bytes(base64URL: token.prefix(22)), bytes.count == 16 else { return nil }
        return bytes.withUnsafeBytes { UUID(uuid: $0.loadUnaligned(as: uuid_t.self)) }
    }

    /// The simulation `token` names, looked up together with other requests' tokens (`Application.trackingTargets`).
    static func find(token: String?, in lookup: CoalescingLookup<String, TrackingTarget>) async throws -> TrackingTarget? {
        guard let token = plausibleToken(token) else { return nil }
        return try await lookup.value(for: token)
    }

    /// The simulations some tokens name, in one query probing the token index once per token. (As `IN (…)` on
    /// PostgreSQL, 500 tokens scanned the whole table once it held 30,000 simulations: 8 ms, against 2 ms.)
    static func find(tokens: [String], on db: any Database) async throws -> [String: TrackingTarget] {
        guard !tokens.isEmpty else { return [:] }
        var asked = BoundRows(count: tokens.count, on: db)
        asked.add(tokens)
        let targets = try await db.plainRows("""
            WITH v(token) AS (\(asked.table))
            SELECT s.token, s.id, s.campaign_id, s.client_id, s.user_id, s.template_id, s.sent_at,
                   c.status, c.tracking_base_url, c.training_module_id
            FROM v JOIN phishing_simulations s ON s.token = v.token JOIN phishing_campaigns c ON c.id = s.campaign_id
            """, prepared: true) { row in
            let token: String = try row.next()
            return try TrackingTarget(
                simulationID: row.next(), campaignID: row.next(), clientID: row.next(), userID: row.next(),
                templateID: row.next(), token: token, sentAt: row.next(), campaignStatus: row.next(),
                trackingBaseURL: row.next(), trainingModuleID: row.next())
        }
        // Tokens are unique (an index says so): one target each.
        return Dictionary(targets.map { ($0.token, $0) }, uniquingKeysWith: { _, last in last })
    }
}

extension Application {
    private struct TrackingTargetsKey: StorageKey { typealias Value = CoalescingLookup<String, TrackingTarget> }

    /// The tracking routes' token lookups, answered a batch at a time.
    var trackingTargets: CoalescingLookup<String, TrackingTarget> {
        get { storage[TrackingTargetsKey.self]! }
        set { storage[TrackingTargetsKey.self] = newValue }
    }
}
