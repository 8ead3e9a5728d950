import Vapor

/// Typed settings read from the environment once at start. README lists every variable.
struct Settings: Sendable {
    enum DatabaseChoice: Sendable, Equatable {
        case sqliteFile(String)
        case sqliteMemory
        case postgres(String)
    }

    var database: DatabaseChoice
    /// How long a request waits for a database connection before it fails.
    var databasePoolTimeout: TimeInterval = 10
    var hostname: String
    var port: Int
    var adminEmail: String?
    var adminPassword: String?
    var defaultCompanyName: String
    /// Signs Bulwark's JWTs and CSRF tokens. When unset, a secret is generated once and kept in the database,
    /// so several processes on one PostgreSQL database agree on it.
    var secretKey: String?
    /// AES-GCM master key (base64, 32 bytes) for secrets at rest; or a key file created on first use.
    var masterKey: String?
    var masterKeyFile: String
    var tokenLifetime: TimeInterval
    var loginMaxFailures: Int
    var loginLockout: TimeInterval
    var rateLimits: [RateCategory: RateLimitRule]
    var oidc: OIDCSettings?
    /// Plain-HTTP cookies are tolerated (development, tests, BULWARK_INSECURE_COOKIES) unless the public URL is https.
    var insecureCookiesAllowed: Bool
    /// An https public address always gets Secure cookies, whatever the environment is called.
    var secureCookies: Bool { publicBaseURL.lowercased().hasPrefix("https://") || !insecureCookiesAllowed }
    /// Keep rate-limit counters in the database even on SQLite (several processes on one file). Always on PostgreSQL.
    var sharedRateLimits: Bool
    var smtp: SMTPSettings?
    var mailFrom: MailAddress
    /// Public address of this server, for links in emails and certificates.
    var publicBaseURL: String
    /// Run the background job worker in this process (off in tests, which drive jobs by hand).
    var runJobWorker: Bool
    /// How long a claimed job (and the work it claims) stays with a worker that stopped sending heartbeats.
    var jobLease: TimeInterval
    /// How long finished (done or dead) jobs are kept for inspection (BULWARK_JOB_RETENTION_DAYS, default 7).
    var jobRetention: TimeInterval = 7 * 86_400
    /// Database connections per process on PostgreSQL (BULWARK_DB_POOL_SIZE, default 16): two processes on a 16-core
    /// machine stay well under PostgreSQL's default max_connections of 100.
    var databasePoolSize: Int = 16
    /// PostgreSQL sessions ask for `jit=off` at connection start (BULWARK_POSTGRES_JIT=server leaves the server's own
    /// setting: for a pooler such as PgBouncer that refuses unknown startup parameters; then `ALTER ROLE … SET jit = off`).
    var postgresJITOff = true
    /// Opens and clicks this many seconds after delivery are taken for link scanners.
    var phishingScannerWindow: TimeInterval
    /// Mail-gateway address ranges whose requests are flagged as scanners (comma separated CIDR).
    var phishingGatewayRanges: [IPNetwork]
    /// Proxies whose X-Forwarded-For is believed (BULWARK_TRUSTED_PROXIES); nobody's by default.
    var trustedProxies: [IPNetwork]
    /// Outbound targets a tenant may set beyond the public internet (BULWARK_OUTBOUND_ALLOW).
    var outbound: OutboundPolicy
    /// Where tracking events wait for the database (BULWARK_JOURNAL_DIR): beside the SQLite file, `bulwark-journal` on
    /// PostgreSQL, nowhere (memory) for the in-memory database of tests.
    var journalDirectory: String? = nil
    /// A list whose bounded count takes longer than this (BULWARK_LIST_COUNT_SLOW_MS, default 100) keeps that count as
    /// an estimate for a while even below `ListTotals.exactLimit` (a filter no index serves walks the whole list to
    /// count it). 0 turns it off; it is off in tests, whose lists must count exactly however slowly a busy machine runs
    /// them.
    var listCountSlowAfter: TimeInterval = 0.1

    struct OIDCSettings: Sendable {
        var issuer: String
        var audience: String
        var jwksURL: String
        /// The company whose people may sign in with this issuer's tokens; nil means the installation's first company.
        var companyID: UUID? = nil
    }

    static func fromEnvironment(_ environment: Environment) throws -> Settings {
        func env(_ key: String) -> String? {
            guard let value = Environment.get(key), !value.isEmpty else { return nil }
            return value
        }
        let database: DatabaseChoice
        if let url = env("DATABASE_URL") {
            database = .postgres(url)
        } else if environment == .testing {
            database = .sqliteMemory
        } else {
            database = .sqliteFile(env("BULWARK_SQLITE_PATH") ?? "bulwark.sqlite")
        }
        var limits = RateCategory.seedDefaults
        for category in RateCategory.allCases {
            if let text = env("BULWARK_RATE_LIMIT_\(category.rawValue.uppercased())"), let rule = RateLimitRule(text) {
                limits[category] = rule
            }
        }
        var oidc: OIDCSettings?
        if let issuer = env("BULWARK_OIDC_ISSUER"), let jwks = env("BULWARK_OIDC_JWKS_URL") {
            oidc = OIDCSettings(issuer: issuer, audience: env("BULWARK_OIDC_AUDIENCE") ?? "bulwark", jwksURL: jwks,
                                companyID: env("BULWARK_OIDC_COMPANY_ID").flatMap(UUID.init(uuidString:)))
        }
        let publicURL = env("BULWARK_PUBLIC_URL") ?? "http://\(env("BULWARK_HOST") ?? "127.0.0.1"):\(env("BULWARK_PORT") ?? "8080")"
        return Settings(
            database: database,
            hostname: env("BULWARK_HOST") ?? "127.0.0.1",
            port: env("BULWARK_PORT").flatMap(Int.init) ?? 8080,
            adminEmail: env("BULWARK_ADMIN_EMAIL"),
            adminPassword: env("BULWARK_ADMIN_PASSWORD"),
            defaultCompanyName: env("BULWARK_COMPANY_NAME") ?? "Bulwark",
            secretKey: env("BULWARK_SECRET_KEY"),
            masterKey: env("BULWARK_MASTER_KEY"),
            masterKeyFile: env("BULWARK_MASTER_KEY_FILE") ?? "bulwark.key",
            tokenLifetime: env("BULWARK_TOKEN_TTL_SECONDS").flatMap(TimeInterval.init) ?? 86_400,
            loginMaxFailures: env("BULWARK_LOGIN_MAX_FAILURES").flatMap(Int.init) ?? 5,
            loginLockout: env("BULWARK_LOGIN_LOCKOUT_SECONDS").flatMap(TimeInterval.init) ?? 900,
            rateLimits: limits,
            oidc: oidc,
            insecureCookiesAllowed: environment == .development || environment == .testing || env("BULWARK_INSECURE_COOKIES") != nil,
            sharedRateLimits: env("BULWARK_SHARED_RATE_LIMITS") != nil,
            smtp: env("BULWARK_SMTP_HOST").map { host in
                SMTPSettings(
                    host: host, port: env("BULWARK_SMTP_PORT").flatMap(Int.init) ?? 587,
                    security: env("BULWARK_SMTP_SECURITY").flatMap(SMTPSettings.Security.init(rawValue:)) ?? .starttls,
                    username: env("BULWARK_SMTP_USERNAME"), password: env("BULWARK_SMTP_PASSWORD"),
                    authMethod: env("BULWARK_SMTP_AUTH").flatMap(SMTPSettings.AuthMethod.init(rawValue:)),
                    verifyCertificates: env("BULWARK_SMTP_INSECURE_TLS") == nil)
            },
            mailFrom: MailAddress(email: env("BULWARK_MAIL_FROM") ?? "bulwark@localhost", name: env("BULWARK_MAIL_FROM_NAME") ?? "Bulwark"),
            publicBaseURL: publicURL,
            runJobWorker: environment != .testing && env("BULWARK_DISABLE_WORKER") == nil,
            jobLease: env("BULWARK_JOB_LEASE_SECONDS").flatMap(TimeInterval.init).map { max($0, 5) } ?? 60,
            jobRetention: env("BULWARK_JOB_RETENTION_DAYS").flatMap(Double.init).map { max($0, 0) * 86_400 } ?? 7 * 86_400,
            databasePoolSize: env("BULWARK_DB_POOL_SIZE").flatMap(Int.init).map { min(max($0, 1), 1000) } ?? 16,
            postgresJITOff: env("BULWARK_POSTGRES_JIT") != "server",
            phishingScannerWindow: env("BULWARK_PHISHING_SCANNER_SECONDS").flatMap(TimeInterval.init) ?? 10,
            phishingGatewayRanges: try networks(env("BULWARK_PHISHING_GATEWAY_RANGES"), setting: "BULWARK_PHISHING_GATEWAY_RANGES"),
            trustedProxies: try networks(env("BULWARK_TRUSTED_PROXIES"), setting: "BULWARK_TRUSTED_PROXIES"),
            outbound: try outboundPolicy(env("BULWARK_OUTBOUND_ALLOW")),
            journalDirectory: env("BULWARK_JOURNAL_DIR") ?? {
                switch database {
                case let .sqliteFile(path): path + ".journal"
                case .postgres: environment == .testing ? nil : "bulwark-journal"
                case .sqliteMemory: nil
                }
            }(),
            listCountSlowAfter: environment == .testing ? .infinity
                : env("BULWARK_LIST_COUNT_SLOW_MS").flatMap(Double.init).map { $0 > 0 ? $0 / 1000 : .infinity } ?? 0.1
        )
    }
}

extension Settings {
    /// Comma-separated addresses or CIDR ranges; a wrong entry stops the start rather than being skipped.
    static func networks(_ text: String?, setting: String) throws -> [IPNetwork] {
        try (text ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.map { entry in
            guard let network = IPNetwork(entry) else {
                throw ConfigurationError("\(setting): \"\(entry)\" is not an IP address or CIDR range.")
            }
            return network
        }
    }

    static func outboundPolicy(_ text: String?) throws -> OutboundPolicy {
        do {
            return try OutboundPolicy(allowList: text ?? "")
        } catch {
            throw ConfigurationError("BULWARK_OUTBOUND_ALLOW: \(error)")
        }
    }
}

extension Application {
    private struct SettingsKey: StorageKey { typealias Value = Settings }

    var settings: Settings {
        get {
            guard let settings = storage[SettingsKey.self] else { fatalError("Settings read before configure(_:)") }
            return settings
        }
        set { storage[SettingsKey.self] = newValue }
    }
}
