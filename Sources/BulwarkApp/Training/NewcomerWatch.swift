import FluentKit
import Foundation
import NIOConcurrencyHelpers
import SQLKit

/// Tells the minutely training sync whether an auto-enrolling campaign can have newcomers. Walking a million people
/// with a probe each, every minute, was a recurring load on the whole server at that size; now the walk runs only
/// when something it depends on changed since the last complete walk: the client's people (how many, the latest
/// change: every Fluent save stamps `updated_at`, and the raw updates that change who someone reports to do too), the
/// campaign itself, or its enrolments. The fingerprint is taken before a walk and kept after it succeeds, so a
/// change during the walk brings another one. Kept per process (after a restart, the first sync walks once).
enum NewcomerWatch {
    struct Fingerprint: Equatable, Sendable {
        var people: Int
        var peopleChanged: Double
        var enrolled: Int
        var campaign: String
    }

    private static let walked = NIOLockedValueBox<[UUID: Fingerprint]>([:])
    private static let maxEntries = 10_000
    /// When each campaign was last checked and how many rows its fingerprint counted.
    private static let checked = NIOLockedValueBox<[UUID: (at: Date, rows: Int)]>([:])
    /// What counting one row costs (a million people and a million enrolments took 0.6 s on SQLite, on this project's
    /// 2-core machine): the check's cost is estimated from its size rather than timed, so it does not depend on how
    /// busy the machine was at that moment.
    static let secondsPerCountedRow = 3e-7

    /// Whether the sync, run every `cadence` seconds, checks the campaign now: a check that counts many rows waits its
    /// `BackgroundBudget` (a client of a million people enrolled in the campaign is checked about every five minutes).
    static func isDue(_ campaignID: UUID, now: Date, cadence: TimeInterval) -> Bool {
        guard let last = checked.withLockedValue({ $0[campaignID] }) else { return true }
        let interval = BackgroundBudget.interval(after: Double(last.rows) * secondsPerCountedRow, floor: 0)
        return interval <= cadence || now.timeIntervalSince(last.at) >= interval
    }

    /// The campaign's fingerprint, remembered with its size for `isDue`.
    static func check(_ campaign: TrainingCampaign, now: Date, on db: any Database) async throws -> Fingerprint {
        let fingerprint = try await fingerprint(of: campaign, on: db)
        noteChecked(campaign.id!, at: now, rows: fingerprint.people + fingerprint.enrolled)
        return fingerprint
    }

    static func noteChecked(_ campaignID: UUID, at now: Date, rows: Int) {
        checked.withLockedValue { entries in
            if entries[campaignID] == nil, entries.count >= maxEntries { entries.removeAll(keepingCapacity: true) }
            entries[campaignID] = (now, rows)
        }
    }

    static func fingerprint(of campaign: TrainingCampaign, on db: any Database) async throws -> Fingerprint {
        let row = try await db.sql.raw("""
            SELECT (SELECT COUNT(*) FROM users WHERE client_id = \(bind: campaign.clientID)) AS people,
                   (SELECT MAX(updated_at) FROM users WHERE client_id = \(bind: campaign.clientID)) AS changed
            """).first()
        let people = try row?.decode(column: "people", as: Int.self) ?? 0
        let changed = try row?.decode(column: "changed", as: Date?.self)?.timeIntervalSince1970 ?? 0
        return Fingerprint(people: people, peopleChanged: changed, enrolled: try await enrolled(in: campaign, on: db),
                           campaign: "\(campaign.updatedAt?.timeIntervalSince1970 ?? 0)|\(CampaignService.enrolmentFingerprint(of: campaign))")
    }

    static func enrolled(in campaign: TrainingCampaign, on db: any Database) async throws -> Int {
        try await db.sql.raw("SELECT COUNT(*) AS n FROM training_enrollments WHERE campaign_id = \(bind: campaign.id!)").first()?
            .decode(column: "n", as: Int.self) ?? 0
    }

    /// Whether the last complete walk of `campaignID` saw something other than `fingerprint`.
    static func mayHaveNewcomers(_ campaignID: UUID, _ fingerprint: Fingerprint) -> Bool {
        walked.withLockedValue { $0[campaignID] } != fingerprint
    }

    /// After a complete walk: the people and campaign as they were before it, the enrolments as the walk left them
    /// (its own enrolments are not a change; one removed afterwards is). The walk counts as a check for `isDue`: the
    /// sync does not count a million people again right after the enrolment job has.
    static func walkedAll(_ campaign: TrainingCampaign, from before: Fingerprint, at now: Date, on db: any Database) async throws {
        var after = before
        after.enrolled = try await enrolled(in: campaign, on: db)
        noteChecked(campaign.id!, at: now, rows: after.people + after.enrolled)
        walked.withLockedValue { entries in
            if entries[campaign.id!] == nil, entries.count >= maxEntries { entries.removeAll(keepingCapacity: true) }
            entries[campaign.id!] = after
        }
    }
}

/// The latest change among a client's people is one index seek: without it `MAX(updated_at)` read every row of the
/// client (1.4 s at 820,000 people on SQLite), holding one of the two connections every minute, which showed as
/// second-long pauses in the tail of every list measured meanwhile.
struct CreateUserChangeIndex: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.createIndex(on: User.schema, name: "users_client_changed_idx", columns: ["client_id", "updated_at"])
    }

    func revert(on database: any Database) async throws {
        try await database.dropIndex("users_client_changed_idx")
    }
}
