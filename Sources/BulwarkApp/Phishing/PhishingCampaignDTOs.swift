import Foundation

struct PhishingCampaignInput: Decodable, Sendable {
    var name: String?
    var templateIds: [String]?
    var templateAssignment: String?
    var audience: CampaignInput.Audience?
    var sendingProfileId: String?
    var launchAt: Date?
    var sendBy: Date?
    var throttlePerMinute: Int?
    var trainingModuleId: String?
    var trackingUrl: String?
}

struct PhishingProgress: Encodable, Sendable {
    var total = 0
    var queued = 0
    var sent = 0
    var errors = 0
    var cancelled = 0
    var opened = 0
    var clicked = 0
    var submitted = 0
    var reported = 0
}

struct PhishingCampaignResponse: Encodable, Sendable {
    let id: UUID
    let name: String
    let status: String
    let templateIds: [UUID]
    let templateAssignment: String
    let audience: CampaignResponse.Audience
    @Nullable var sendingProfileId: UUID?
    @Nullable var launchAt: Date?
    @Nullable var sendBy: Date?
    @Nullable var throttlePerMinute: Int?
    @Nullable var trainingModuleId: UUID?
    let trackingUrl: String
    @Nullable var launchedAt: Date?
    @Nullable var completedAt: Date?
    @Nullable var cancelledAt: Date?
    let progress: PhishingProgress
    /// Why sending is held for this campaign (its own problem, e.g. its profile's password), and until when.
    @Nullable var lastError: String?
    @Nullable var sendRetryAt: Date?
    let createdAt: Date?

    init(_ campaign: PhishingCampaign, progress: PhishingProgress) {
        id = campaign.id!
        name = campaign.name
        status = campaign.status
        templateIds = campaign.templateIDs
        templateAssignment = campaign.templateAssignment
        let values = campaign.audienceValues
        audience = .init(type: campaign.audienceType, departments: campaign.audienceType == "departments" ? values : [],
                         userIds: campaign.audienceType == "users" ? values : [])
        sendingProfileId = campaign.sendingProfileID
        launchAt = campaign.launchAt
        sendBy = campaign.sendBy
        throttlePerMinute = campaign.throttlePerMinute
        trainingModuleId = campaign.trainingModuleID
        trackingUrl = campaign.trackingBaseURL
        launchedAt = campaign.launchedAt
        completedAt = campaign.completedAt
        cancelledAt = campaign.cancelledAt
        self.progress = progress
        lastError = campaign.lastError
        sendRetryAt = campaign.sendRetryAt
        createdAt = campaign.createdAt
    }
}

struct SimulationResponse: Encodable, Sendable {
    let id: UUID
    let campaignId: UUID
    let userId: UUID
    let email: String
    let name: String
    @Nullable var department: String?
    let templateId: UUID
    let sendStatus: String
    let status: String
    @Nullable var error: String?
    @Nullable var sentAt: Date?
    @Nullable var openedAt: Date?
    @Nullable var clickedAt: Date?
    @Nullable var submittedAt: Date?
    @Nullable var reportedAt: Date?

    init(_ simulation: Simulation) {
        id = simulation.id!
        campaignId = simulation.$campaign.id
        userId = simulation.userID
        email = simulation.email
        name = "\(simulation.firstName) \(simulation.lastName)"
        department = simulation.department
        templateId = simulation.templateID
        sendStatus = simulation.sendStatus
        status = Simulation.Stage(rawValue: simulation.stage)?.name ?? "pending"
        error = simulation.error
        sentAt = simulation.sentAt
        openedAt = simulation.openedAt
        clickedAt = simulation.clickedAt
        submittedAt = simulation.submittedAt
        reportedAt = simulation.reportedAt
    }
}
