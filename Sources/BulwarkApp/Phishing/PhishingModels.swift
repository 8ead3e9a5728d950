import Fluent
import Vapor

/// A simulated phishing email with its landing page. Built-ins (no company) are global and read-only.
final class PhishingTemplate: Model, @unchecked Sendable {
    static let schema = "phishing_templates"

    @ID(key: .id) var id: UUID?
    @OptionalField(key: "company_id") var companyID: UUID?
    @OptionalField(key: "client_id") var clientID: UUID?
    @OptionalField(key: "builtin_key") var builtinKey: String?
    @OptionalField(key: "source_template_id") var sourceTemplateID: UUID?
    @Field(key: "name") var name: String
    @Field(key: "category") var category: String
    @Field(key: "difficulty") var difficulty: String
    @Field(key: "locale") var locale: String
    @Field(key: "subject") var subject: String
    @Field(key: "sender_name") var senderName: String
    @Field(key: "sender_email") var senderEmail: String
    @Field(key: "html") var html: String
    @Field(key: "text") var text: String
    @Field(key: "landing_html") var landingHTML: String
    /// Names of the landing form fields whose presence is recorded (never their values).
    @Field(key: "landing_fields") var landingFieldsJSON: String
    @Field(key: "red_flags") var redFlagsJSON: String
    @OptionalField(key: "archived_at") var archivedAt: Date?
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?
    @Timestamp(key: "updated_at", on: .update) var updatedAt: Date?

    init() {}

    var isBuiltin: Bool { companyID == nil }
    var landingFields: [String] {
        get { JSONList.decode(landingFieldsJSON) }
        set { landingFieldsJSON = JSONList.encode(newValue) }
    }
    var redFlags: [String] {
        get { JSONList.decode(redFlagsJSON) }
        set { redFlagsJSON = JSONList.encode(newValue) }
    }
}

/// An SMTP server a client sends simulations through. The password is sealed and never returned.
final class SendingProfile: Model, @unchecked Sendable {
    static let schema = "phishing_sending_profiles"

    @ID(key: .id) var id: UUID?
    @Field(key: "client_id") var clientID: UUID
    @Field(key: "name") var name: String
    @Field(key: "host") var host: String
    @Field(key: "port") var port: Int
    @Field(key: "security") var security: String
    @OptionalField(key: "username") var username: String?
    @OptionalField(key: "password_sealed") var passwordSealed: String?
    @Field(key: "envelope_from") var envelopeFrom: String
    @Field(key: "headers") var headersJSON: String
    @Field(key: "throttle_per_minute") var throttlePerMinute: Int
    /// Set while the server cannot be used (refused connection, TLS, authentication): nothing is sent through the
    /// profile before this time, and no message is charged an attempt for it.
    @OptionalField(key: "paused_until") var pausedUntil: Date?
    @OptionalField(key: "pause_reason") var pauseReason: String?
    /// Connection failures in a row: the pause doubles with each, up to an hour.
    @Field(key: "failure_count") var failureCount: Int
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?
    @Timestamp(key: "updated_at", on: .update) var updatedAt: Date?

    init() {}

    var headers: [String: String] {
        get { (try? JSONDecoder().decode([String: String].self, from: Data(headersJSON.utf8))) ?? [:] }
        set { headersJSON = String(decoding: (try? JSONEncoder().encode(newValue)) ?? Data("{}".utf8), as: UTF8.self) }
    }
}

final class PhishingCampaign: Model, @unchecked Sendable {
    static let schema = "phishing_campaigns"

    static let statuses = ["draft", "scheduled", "sending", "sent", "completed", "cancelled"]

    @ID(key: .id) var id: UUID?
    @Field(key: "client_id") var clientID: UUID
    @Field(key: "name") var name: String
    @Field(key: "status") var status: String
    @Field(key: "template_ids") var templateIDsJSON: String
    /// "random" (each person gets one of the templates at random) or "ab" (even split in template order).
    @Field(key: "template_assignment") var templateAssignment: String
    @Field(key: "audience_type") var audienceType: String
    @Field(key: "audience_values") var audienceValuesJSON: String
    @OptionalField(key: "sending_profile_id") var sendingProfileID: UUID?
    @OptionalField(key: "launch_at") var launchAt: Date?
    /// Sending is spread evenly between launch and this time.
    @OptionalField(key: "send_by") var sendBy: Date?
    @OptionalField(key: "throttle_per_minute") var throttlePerMinute: Int?
    @OptionalField(key: "training_module_id") var trainingModuleID: UUID?
    @Field(key: "tracking_base_url") var trackingBaseURL: String
    @OptionalField(key: "created_by") var createdBy: UUID?
    @OptionalField(key: "launched_at") var launchedAt: Date?
    @OptionalField(key: "completed_at") var completedAt: Date?
    @OptionalField(key: "cancelled_at") var cancelledAt: Date?
    /// Why sending stopped for this campaign (its own problem, not its recipients'), and when it is tried again.
    @OptionalField(key: "last_error") var lastError: String?
    @OptionalField(key: "send_retry_at") var sendRetryAt: Date?
    @Field(key: "send_failures") var sendFailures: Int
    @Timestamp(key: "created_at", on: .create) var createdAt: Date?
    @Timestamp(key: "updated_at", on: .update) var updatedAt: Date?

    init() {}

    var templateIDs: [UUID] {
        get { JSONList.decode(templateIDsJSON) }
        set { templateIDsJSON = JSONList.encode(newValue) }
    }
    var audienceValues: [String] {
        get { JSONList.decode(audienceValuesJSON) }
        set { audienceValuesJSON = JSONList.encode(newValue) }
    }
}

/// One person's simulated email in one campaign. `stage` only moves forward; reporting is separate.
final class Simulation: Model, @unchecked Sendable {
    static let schema = "phishing_simulations"

    enum Stage: Int, CaseIterable, Sendable {
        case pending = 0, sent = 1, opened = 2, clicked = 3, submitted = 4

        var name: String {
            switch self {
            case .pending: "pending"
            case .sent: "sent"
            case .opened: "opened"
            case .clicked: "clicked"
            case .submitted: "submitted"
            }
        }

        init?(name: String) { self.init(rawValue: Stage.allCases.first { $0.name == name }?.rawValue ?? -1) }
    }

    @ID(key: .id) var id: UUID?
    @Field(key: "client_id") var clientID: UUID
    @Parent(key: "campaign_id") var campaign: PhishingCampaign
    @Field(key: "user_id") var userID: UUID
    @Field(key: "template_id") var templateID: UUID
    @Field(key: "token") var token: String
    @Field(key: "email") var email: String
    @Field(key: "first_name") var firstName: String
    @Field(key: "last_name") var lastName: String
    @OptionalField(key: "department") var department: String?
    @OptionalField(key: "position") var position: String?
    /// queued, sending, sent, error, cancelled.
    @Field(key: "send_status") var sendStatus: String
    @Field(key: "stage") var stage: Int
    @Field(key: "send_at") var sendAt: Date
    @OptionalField(key: "claimed_at") var claimedAt: Date?
    /// The worker whose lease covers this simulation while it is `sending`.
    @OptionalField(key: "claimed_by") var claimedBy: String?
    @Field(key: "attempts") var attempts: Int
    @OptionalField(key: "error") var error: String?
    @Field(key: "message_id") var messageID: String
    @OptionalField(key: "sent_at") var sentAt: Date?
    @OptionalField(key: "opened_at") var openedAt: Date?
    @OptionalField(key: "clicked_at") var clickedAt: Date?
    @OptionalField(key: "submitted_at") var submittedAt: Date?
    @OptionalField(key: "reported_at") var reportedAt: Date?

    init() {}

    /// Listed by hand (`ModelPropertiesTests` checks the list against reflection): Fluent's default finds them by
    /// reflection on every row it reads or writes, which was a fifth of a list's CPU.
    var properties: [any AnyProperty] {
        [
            _id, _clientID, _campaign, _userID, _templateID, _token, _email, _firstName, _lastName, _department,
            _position, _sendStatus, _stage, _sendAt, _claimedAt, _claimedBy, _attempts, _error, _messageID, _sentAt,
            _openedAt, _clickedAt, _submittedAt, _reportedAt
        ]
    }
}

/// One tracking event, kept even when flagged as a scanner so the timeline is complete.
final class PhishingEvent: Model, @unchecked Sendable {
    static let schema = "phishing_events"

    @ID(key: .id) var id: UUID?
    @Field(key: "simulation_id") var simulationID: UUID
    @Field(key: "campaign_id") var campaignID: UUID
    @Field(key: "client_id") var clientID: UUID
    /// sent, open, click, submit, report, error.
    @Field(key: "kind") var kind: String
    @Field(key: "occurred_at") var occurredAt: Date
    @OptionalField(key: "ip") var ip: String?
    @OptionalField(key: "user_agent") var userAgent: String?
    @Field(key: "is_bot") var isBot: Bool
    @OptionalField(key: "bot_reason") var botReason: String?
    @OptionalField(key: "details") var details: String?

    init() {}
}
