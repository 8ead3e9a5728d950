import Foundation

/// Body of POST/PUT /api/v1/campaigns.
struct CampaignInput: Decodable, Sendable {
    struct Audience: Decodable, Sendable {
        var type: String?
        var departments: [String]?
        var userIds: [String]?
    }

    var name: String?
    var description: String?
    var moduleIds: [String]?
    var audience: Audience?
    var startAt: Date?
    var dueAt: Date?
    var reminderDays: [Int]?
    var autoEnroll: Bool?
    var status: String?
}

struct CampaignStats: Encodable, Sendable {
    var enrolled = 0
    var assignments = 0
    var completed = 0
    var inProgress = 0
    var notStarted = 0
    var overdue = 0
    var completionRate: Double = 0
    @Nullable var averageScore: Double?
}

struct CampaignResponse: Encodable, Sendable {
    struct Audience: Encodable, Sendable {
        let type: String
        let departments: [String]
        let userIds: [String]
    }

    let id: UUID
    let name: String
    @Nullable var description: String?
    let status: String
    let moduleIds: [UUID]
    let audience: Audience
    let startAt: Date
    let dueAt: Date
    let reminderDays: [Int]
    let autoEnroll: Bool
    @Nullable var activatedAt: Date?
    @Nullable var completedAt: Date?
    let stats: CampaignStats
    let createdAt: Date?
    let updatedAt: Date?

    init(_ campaign: TrainingCampaign, stats: CampaignStats) {
        id = campaign.id!
        name = campaign.name
        description = campaign.description
        status = campaign.status
        moduleIds = campaign.moduleIDs
        let values = campaign.audienceValues
        audience = Audience(type: campaign.audienceType, departments: campaign.audienceType == "departments" ? values : [],
                            userIds: campaign.audienceType == "users" ? values : [])
        startAt = campaign.startAt
        dueAt = campaign.dueAt
        reminderDays = campaign.reminderDays
        autoEnroll = campaign.autoEnroll
        activatedAt = campaign.activatedAt
        completedAt = campaign.completedAt
        self.stats = stats
        createdAt = campaign.createdAt
        updatedAt = campaign.updatedAt
    }
}
