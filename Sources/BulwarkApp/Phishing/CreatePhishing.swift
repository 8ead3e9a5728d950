import Fluent

struct CreatePhishing: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(PhishingTemplate.schema)
            .id()
            .field("company_id", .uuid, .references(Company.schema, .id, onDelete: .cascade))
            .field("client_id", .uuid, .references(Client.schema, .id, onDelete: .cascade))
            .field("builtin_key", .string)
            .field("source_template_id", .uuid)
            .field("name", .string, .required)
            .field("category", .string, .required)
            .field("difficulty", .string, .required)
            .field("locale", .string, .required)
            .field("subject", .string, .required)
            .field("sender_name", .string, .required)
            .field("sender_email", .string, .required)
            .field("html", .string, .required)
            .field("text", .string, .required)
            .field("landing_html", .string, .required)
            .field("landing_fields", .string, .required)
            .field("red_flags", .string, .required)
            .field("archived_at", .datetime)
            .field("created_at", .datetime)
            .field("updated_at", .datetime)
            .unique(on: "builtin_key")
            .create()
        try await database.createIndex(on: PhishingTemplate.schema, name: "phishing_templates_owner_idx", columns: ["company_id", "client_id"])
        try await database.schema(SendingProfile.schema)
            .id()
            .field("client_id", .uuid, .required, .references(Client.schema, .id, onDelete: .cascade))
            .field("name", .string, .required)
            .field("host", .string, .required)
            .field("port", .int, .required)
            .field("security", .string, .required)
            .field("username", .string)
            .field("password_sealed", .string)
            .field("envelope_from", .string, .required)
            .field("headers", .string, .required)
            .field("throttle_per_minute", .int, .required)
            .field("created_at", .datetime)
            .field("updated_at", .datetime)
            .create()
        try await database.createIndex(on: SendingProfile.schema, name: "phishing_profiles_client_idx", columns: ["client_id"])
        try await database.schema(PhishingCampaign.schema)
            .id()
            .field("client_id", .uuid, .required, .references(Client.schema, .id, onDelete: .cascade))
            .field("name", .string, .required)
            .field("status", .string, .required)
            .field("template_ids", .string, .required)
            .field("template_assignment", .string, .required)
            .field("audience_type", .string, .required)
            .field("audience_values", .string, .required)
            .field("sending_profile_id", .uuid, .references(SendingProfile.schema, .id, onDelete: .setNull))
            .field("launch_at", .datetime)
            .field("send_by", .datetime)
            .field("throttle_per_minute", .int)
            .field("training_module_id", .uuid)
            .field("tracking_base_url", .string, .required)
            .field("created_by", .uuid)
            .field("launched_at", .datetime)
            .field("completed_at", .datetime)
            .field("cancelled_at", .datetime)
            .field("created_at", .datetime)
            .field("updated_at", .datetime)
            .create()
        try await database.createIndex(on: PhishingCampaign.schema, name: "phishing_campaigns_client_status_idx", columns: ["client_id", "status"])
        try await database.schema(Simulation.schema)
            .id()
            .field("client_id", .uuid, .required, .references(Client.schema, .id, onDelete: .cascade))
            .field("campaign_id", .uuid, .required, .references(PhishingCampaign.schema, .id, onDelete: .cascade))
            .field("user_id", .uuid, .required, .references(User.schema, .id, onDelete: .cascade))
            .field("template_id", .uuid, .required)
            .field("token", .string, .required)
            .field("email", .string, .required)
            .field("first_name", .string, .required)
            .field("last_name", .string, .required)
            .field("department", .string)
            .field("position", .string)
            .field("send_status", .string, .required)
            .field("stage", .int, .required)
            .field("send_at", .datetime, .required)
            .field("claimed_at", .datetime)
            .field("attempts", .int, .required)
            .field("error", .string)
            .field("message_id", .string, .required)
            .field("sent_at", .datetime)
            .field("opened_at", .datetime)
            .field("clicked_at", .datetime)
            .field("submitted_at", .datetime)
            .field("reported_at", .datetime)
            .unique(on: "token")
            .unique(on: "campaign_id", "user_id")
            .create()
        try await database.createIndex(on: Simulation.schema, name: "phishing_simulations_due_idx", columns: ["send_status", "send_at"])
        try await database.createIndex(on: Simulation.schema, name: "phishing_simulations_campaign_idx", columns: ["campaign_id", "stage"])
        try await database.createIndex(on: Simulation.schema, name: "phishing_simulations_user_idx", columns: ["user_id"])
        try await database.schema(PhishingEvent.schema)
            .id()
            .field("simulation_id", .uuid, .required, .references(Simulation.schema, .id, onDelete: .cascade))
            .field("campaign_id", .uuid, .required)
            .field("client_id", .uuid, .required)
            .field("kind", .string, .required)
            .field("occurred_at", .datetime, .required)
            .field("ip", .string)
            .field("user_agent", .string)
            .field("is_bot", .bool, .required)
            .field("bot_reason", .string)
            .field("details", .string)
            .create()
        try await database.createIndex(on: PhishingEvent.schema, name: "phishing_events_simulation_idx", columns: ["simulation_id", "occurred_at"])
        try await database.createIndex(on: PhishingEvent.schema, name: "phishing_events_campaign_idx", columns: ["campaign_id", "kind"])
    }

    func revert(on database: any Database) async throws {
        try await database.schema(PhishingEvent.schema).delete()
        try await database.schema(Simulation.schema).delete()
        try await database.schema(PhishingCampaign.schema).delete()
        try await database.schema(SendingProfile.schema).delete()
        try await database.schema(PhishingTemplate.schema).delete()
    }
}

/// Leases on simulations being sent, campaign-level send errors, and paused sending profiles.
struct UpdatePhishingForLeasesAndPauses: AsyncMigration {
    // SQLite adds one column per ALTER TABLE: one update per field.
    func prepare(on database: any Database) async throws {
        try await database.schema(Simulation.schema).field("claimed_by", .string).update()
        try await database.schema(PhishingCampaign.schema).field("last_error", .string).update()
        try await database.schema(PhishingCampaign.schema).field("send_retry_at", .datetime).update()
        try await database.schema(PhishingCampaign.schema).field("send_failures", .int, .required, .sql(.default(0))).update()
        try await database.schema(SendingProfile.schema).field("paused_until", .datetime).update()
        try await database.schema(SendingProfile.schema).field("pause_reason", .string).update()
        try await database.schema(SendingProfile.schema).field("failure_count", .int, .required, .sql(.default(0))).update()
    }

    func revert(on database: any Database) async throws {
        for field in ["paused_until", "pause_reason", "failure_count"] {
            try await database.schema(SendingProfile.schema).deleteField(FieldKey(stringLiteral: field)).update()
        }
        for field in ["last_error", "send_retry_at", "send_failures"] {
            try await database.schema(PhishingCampaign.schema).deleteField(FieldKey(stringLiteral: field)).update()
        }
        try await database.schema(Simulation.schema).deleteField("claimed_by").update()
    }
}

/// Indexes the per-campaign claim of due simulations and the throttle's count of recent sends.
struct CreateSimulationCampaignDueIndex: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.createIndex(on: Simulation.schema, name: "phishing_simulations_campaign_due_idx",
                                       columns: ["campaign_id", "send_status", "send_at"])
        // The throttle counts what a campaign (and its profile) sent in the last moments.
        try await database.createIndex(on: Simulation.schema, name: "phishing_simulations_campaign_sent_idx",
                                       columns: ["campaign_id", "sent_at"])
    }

    func revert(on database: any Database) async throws {
        try await database.dropIndex("phishing_simulations_campaign_due_idx")
        try await database.dropIndex("phishing_simulations_campaign_sent_idx")
    }
}

/// When the sender last served each campaign: campaigns take turns.
struct UpdatePhishingCampaignsAddServedAt: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema(PhishingCampaign.schema).field("served_at", .datetime).update()
    }

    func revert(on database: any Database) async throws {
        try await database.schema(PhishingCampaign.schema).deleteField("served_at").update()
    }
}

/// Indexes a campaign's results in the order they are listed (by name), so a page of a million-person campaign is an
/// index walk, not a sort of the whole campaign; and by stage, then name, for a page of one status (the index by stage
/// alone it replaces made SQLite walk the whole campaign by name for a status nobody had reached).
struct CreateSimulationResultsIndexes: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.createIndex(on: Simulation.schema, name: "phishing_simulations_campaign_name_idx",
                                       columns: ["campaign_id", "last_name", "first_name", "id"])
        try await database.createIndex(on: Simulation.schema, name: "phishing_simulations_campaign_stage_name_idx",
                                       columns: ["campaign_id", "stage", "last_name", "first_name", "id"])
        try await database.dropIndex("phishing_simulations_campaign_idx")
    }

    func revert(on database: any Database) async throws {
        try await database.createIndex(on: Simulation.schema, name: "phishing_simulations_campaign_idx", columns: ["campaign_id", "stage"])
        try await database.dropIndex("phishing_simulations_campaign_stage_name_idx")
        try await database.dropIndex("phishing_simulations_campaign_name_idx")
    }
}

/// Every tracking event paid for an index on (campaign, kind) that no query reads, while the statistics' count of a
/// client's scanner events read the whole events table. The count now has a partial index holding scanner events
/// only (a small share of events, and no cost to a person's event).
struct ReplaceEventCampaignIndex: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.createIndex(on: PhishingEvent.schema, name: "phishing_events_flagged_idx", columns: ["client_id"],
                                       partial: "is_bot")
        try await database.dropIndex("phishing_events_campaign_idx")
    }

    func revert(on database: any Database) async throws {
        try await database.createIndex(on: PhishingEvent.schema, name: "phishing_events_campaign_idx", columns: ["campaign_id", "kind"])
        try await database.dropIndex("phishing_events_flagged_idx")
    }
}
