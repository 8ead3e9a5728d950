import Fluent
import Foundation

/// The training campaign that holds the follow-up assignments of one phishing campaign.
enum PhishingFollowUp {
    /// Enrols the people whose clicks or submissions a batch of tracking hits holds in their campaigns' training
    /// modules (once each: enrolling again changes nothing), as of their first such hit.
    static func enrol(_ trainees: [(target: TrackingTarget, at: Date)], on db: any Database) async throws {
        for (campaignID, hits) in Dictionary(grouping: trainees, by: \.target.campaignID).sorted(by: { UUID.byteOrder($0.key, $1.key) }) {
            guard let moduleID = hits[0].target.trainingModuleID,
                  let campaign = try await PhishingCampaign.find(campaignID, on: db) else { continue }
            let now = hits.map(\.at).min()!
            // In id order, as every batch inserts them: two batches enrolling the same people cannot deadlock.
            let people = Set(hits.map(\.target.userID)).sorted(by: UUID.byteOrder)
            let followUp = try await trainingCampaign(for: campaign, moduleID: moduleID, db: db, now: now)
            try await CampaignService.enroll(people.map { ($0, moduleID) }, in: followUp, db: db, now: now)
        }
    }

    /// The campaign's follow-up, created by the first batch that needs it. On PostgreSQL two processes' flushers may
    /// both find none: the second waits on a lock held until the first commits, then finds the first's. (The lock is
    /// taken after the batch's simulation rows, and by nothing else, so it joins no cycle; SQLite has one writer.)
    static func trainingCampaign(for campaign: PhishingCampaign, moduleID: UUID, db: any Database, now: Date) async throws -> TrainingCampaign {
        let name = "Phishing follow-up: \(campaign.name)"
        let existing = { try await TrainingCampaign.query(on: db).filter(\.$clientID == campaign.clientID).filter(\.$name == name)
            .filter(\.$deletedAt == nil).first() }
        if let found = try await existing() { return found }
        if db.sql.dialect.name == "postgresql" {
            // Keyed as the follow-up is found: two campaigns of one client with the same name share one follow-up.
            let key = "phishing-follow-up:\(campaign.clientID):\(name)"
            try await db.sql.raw("SELECT pg_advisory_xact_lock(hashtextextended(\(bind: key), 0))").run()
            if let found = try await existing() { return found }
        }
        let followUp = TrainingCampaign()
        followUp.clientID = campaign.clientID
        followUp.name = name
        followUp.description = "Assigned automatically to people who clicked or submitted in the phishing simulation."
        followUp.status = "active"
        followUp.moduleIDs = [moduleID]
        followUp.audienceType = "users"
        followUp.audienceValues = []
        followUp.startAt = now
        followUp.dueAt = now.addingTimeInterval(14 * 86_400)
        followUp.reminderDays = [3]
        followUp.autoEnroll = false
        followUp.activatedAt = now
        try await followUp.create(on: db)
        return followUp
    }
}
