import Vapor

func routes(_ app: Application) throws {
    try app.register(collection: OpsController())
    try app.register(collection: DocsController())
    try app.register(collection: AuthController())
    try app.register(collection: AuthV3Controller())
    try app.register(collection: UsersV1Controller())
    try app.register(collection: UsersV4Controller())
    try app.register(collection: CompaniesV3Controller())
    try app.register(collection: APIKeysController())
    try app.register(collection: AuditLogsV1Controller())
    try app.register(collection: ModulesController())
    try app.register(collection: CampaignsController())
    try app.register(collection: LearnerController())
    try app.register(collection: TeamController())
    try app.register(collection: EscalationsController())
    try app.register(collection: LeaderboardController())
    try app.register(collection: ExportsController())
    try app.register(collection: PhishingTemplatesController())
    try app.register(collection: SendingProfilesController())
    try app.register(collection: PhishingCampaignsController())
    try app.register(collection: PhishingResultsController())
    try app.register(collection: TrackingController())
    try app.register(collection: DashboardAuthController())
    try app.register(collection: DashboardUsersController())
    try app.register(collection: DashboardProfileController())
    try app.register(collection: DashboardKeysController())
    try app.register(collection: DashboardLearnController())
    try app.register(collection: DashboardTrainingController())
    try app.register(collection: DashboardPhishingController())
}

func registerCommands(_ app: Application) {
    app.asyncCommands.use(CreateAdminCommand(), as: "create-admin")
    app.asyncCommands.use(CreateAPIKeyCommand(), as: "create-api-key")
    app.asyncCommands.use(AuditVerifyCommand(), as: "audit-verify")
    app.asyncCommands.use(RunJobsCommand(), as: "run-jobs")
}
