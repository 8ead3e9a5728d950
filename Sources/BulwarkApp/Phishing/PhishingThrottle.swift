import Foundation
import Fluent
import SQLKit

extension PhishingSender {
    /// How many more messages the campaign may send now. Send times are spread at launch, but a backlog (after an
    /// outage, a paused profile, a stopped server) is all due at once: the throttles are also enforced here, over a
    /// short sliding window, counting what went out and what is being sent, per campaign and per sending profile
    /// across all its campaigns.
    func throttleAllowance(_ campaignID: UUID) async throws -> Int {
        guard let row = try await db.sql.raw("""
            SELECT c.throttle_per_minute AS campaign_rate, p.throttle_per_minute AS profile_rate, p.id AS profile_id
            FROM phishing_campaigns c LEFT JOIN phishing_sending_profiles p ON p.id = c.sending_profile_id
            WHERE c.id = \(bind: campaignID)
            """).first() else { return 0 }
        var allowance = Int.max
        if let rate = try row.decode(column: "campaign_rate", as: Int?.self) {
            allowance = min(allowance, try await remaining(rate: rate, campaigns: "SELECT \(bind: campaignID)"))
        }
        if let rate = try row.decode(column: "profile_rate", as: Int?.self),
           let profileID = try row.decode(column: "profile_id", as: UUID?.self) {
            allowance = min(allowance, try await remaining(
                rate: rate, campaigns: "SELECT id FROM phishing_campaigns WHERE sending_profile_id = \(bind: profileID)"))
        }
        return allowance
    }

    /// `rate` per minute, over a window of at least 10 s (long enough to allow one message): the allowance left.
    private func remaining(rate: Int, campaigns: SQLQueryString) async throws -> Int {
        guard rate > 0 else { return 0 }
        let window = max(10, 60 / Double(rate))
        let allowed = max(1, Int(Double(rate) * window / 60))
        let since = context.now.addingTimeInterval(-window)
        let used = try await db.sql.raw("""
            SELECT (SELECT count(*) FROM phishing_simulations WHERE campaign_id IN (\(campaigns)) AND sent_at > \(bind: since))
                 + (SELECT count(*) FROM phishing_simulations WHERE campaign_id IN (\(campaigns)) AND send_status = 'sending')
                 AS used
            """).first()?.decode(column: "used", as: Int.self) ?? 0
        return max(0, allowed - used)
    }
}
