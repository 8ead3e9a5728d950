import Fluent

/// Every migration, in the order they landed. Never edit one that has landed; add a new one.
enum Migrations {
    static let all: [any Migration] = [
        CreateCompanies(),
        CreateClients(),
        CreateUsers(),
        CreateAuthSessionsAndAPIKeys(),
        CreateAuditEntries(),
        CreateRateLimitCounters(),
        CreateInstanceSecrets(),
        CreateJobs(),
        CreateTrainingModules(),
        CreateTrainingCampaignsAndEnrollments(),
        CreateEscalations(),
        CreateTrainingSettings(),
        CreateTrainingReminders(),
        CreatePhishing(),
    ]
}
