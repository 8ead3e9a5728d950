import Crypto
import Fluent

/// Every migration, in the order they landed. Never edit one that has landed; add a new one.
enum Migrations {
    /// `auditKey` seals the audit chains written before their heads were authenticated (`SealAuditChains`).
    static func all(auditKey: SymmetricKey) -> [any Migration] { [
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
        CreateIdentityLinksAndRevokedTokens(),
        UpdateUsersAddTOTPLastStep(),
        UpdateUsersAddDeletedAt(),
        UpdateTrainingCampaignsAddDeletedAt(),
        SealAuditChains(key: auditKey),
        CreateContentVersions(),
        UpdatePhishingForLeasesAndPauses(),
        UpdateEscalationsAndRemindersForClaims(),
        CreateSimulationCampaignDueIndex(),
        CreateUserListIndexes(),
        CreateUserSearchIndex(),
        CreateOverdueIndexes(),
        UpdatePhishingCampaignsAddServedAt(),
        CreateWalkIndexes(),
        UpdatePhishingCampaignsForLaunchWalk(),
        DropUsersClientNamesIndex(),
        CreateUserChangeIndex(),
        CreateSimulationResultsIndexes(),
        ReplaceEventCampaignIndex(),
    ] }
}
