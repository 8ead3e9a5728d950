/// The roles of DESIGN.md with their display names and permissions, in order of reach.
enum Role: String, CaseIterable, Codable, Sendable {
    case superAdmin = "super_admin"
    case mspAdmin = "msp_admin"
    case mspUser = "msp_user"
    case clientAdmin = "client_admin"
    case manager = "manager"
    case companyUser = "company_user"

    var displayName: String {
        switch self {
        case .superAdmin: "Super Administrator"
        case .mspAdmin: "MSP Administrator"
        case .mspUser: "MSP User"
        case .clientAdmin: "Client Administrator"
        case .manager: "Manager"
        case .companyUser: "Company User"
        }
    }

    /// Stable short identifier used as the role's `id` in responses.
    var id: String { rawValue }

    /// Higher rank reaches further; a user may only grant roles at or below their own.
    var rank: Int {
        switch self {
        case .superAdmin: 6
        case .mspAdmin: 5
        case .mspUser: 4
        case .clientAdmin: 3
        case .manager: 2
        case .companyUser: 1
        }
    }

    /// Company-wide roles act on every client of their company; the others on their own client only.
    var isCompanyWide: Bool { self == .superAdmin || self == .mspAdmin || self == .mspUser }

    var permissions: [Permission] {
        switch self {
        case .superAdmin:
            return Permission.allCases
        case .mspAdmin:
            return Permission.allCases.filter { $0 != .manageAllCompanies }
        case .mspUser:
            return [.viewUsers, .viewClients, .viewAssessments, .managePolicies, .viewAuditLogs, .manageTraining,
                    .managePhishing, .viewReports, .takeTraining]
        case .clientAdmin:
            return [.manageUsers, .viewUsers, .viewClients, .manageApiKeys, .manageTraining, .managePolicies,
                    .viewAssessments, .viewAuditLogs, .writeAuditLogs, .viewReports, .viewTeam, .takeTraining, .managePhishing]
        case .manager:
            return [.viewUsers, .viewTeam, .viewReports, .takeTraining]
        case .companyUser:
            return [.takeTraining]
        }
    }

    func has(_ permission: Permission) -> Bool { permissions.contains(permission) }
}

/// Permission strings as seed 002 shows them (`manage_policies`, `view_assessments`, `manage_users`).
enum Permission: String, CaseIterable, Codable, Sendable {
    case manageAllCompanies = "manage_all_companies"
    case manageCompany = "manage_company"
    case manageClients = "manage_clients"
    case viewClients = "view_clients"
    case manageUsers = "manage_users"
    case viewUsers = "view_users"
    case manageApiKeys = "manage_api_keys"
    case managePolicies = "manage_policies"
    case viewAssessments = "view_assessments"
    case manageAssessments = "manage_assessments"
    case viewAuditLogs = "view_audit_logs"
    case writeAuditLogs = "write_audit_logs"
    case manageTraining = "manage_training"
    case viewReports = "view_reports"
    case viewTeam = "view_team"
    case takeTraining = "take_training"
    case managePhishing = "manage_phishing"
}
