import Crypto
import Fluent
import FluentPostgresDriver
import FluentSQLiteDriver
import JWTKit
import Leaf
import SQLKit
import Vapor

/// Builds the whole application. Tests pass their own `settings` (in-memory database, high rate limits).
public func configure(_ app: Application) async throws {
    try await configure(app, settings: try Settings.fromEnvironment(app.environment))
}

func configure(_ app: Application, settings: Settings) async throws {
    app.settings = settings
    app.signInState = SignInState()
    BulwarkMetrics.bootstrapOnce()
    app.http.server.configuration.hostname = settings.hostname
    app.http.server.configuration.port = settings.port
    // Vapor's default (16 KB) is below what the API accepts (an HTML email template may hold 500,000 characters).
    app.routes.defaultMaxBodySize = "1mb"

    switch settings.database {
    case let .postgres(url):
        var configuration = try SQLPostgresConfiguration(url: url)
        // No JIT: a LIMITed query over a large table is estimated at the cost of the whole table, so PostgreSQL
        // compiled the overdue list's plan on every request (23 ms of a 25 ms answer at 220,000 people) for a walk
        // that reads 25 rows.
        if settings.postgresJITOff { configuration.coreConfiguration.options.additionalStartupParameters.append(("jit", "off")) }
        app.databases.use(.postgres(configuration: configuration, maxConnectionsPerEventLoop: app.databaseConnectionsPerLoop,
                                    connectionPoolTimeout: .seconds(Int64(settings.databasePoolTimeout))), as: .psql)
        app.rateLimitStore = BatchedRateLimitStore()
    case let .sqliteFile(path):
        app.databases.use(.sqlite(.file(path), connectionPoolTimeout: .seconds(Int64(settings.databasePoolTimeout))), as: .sqlite)
        app.databases.use(.sqlite(.file(path), connectionPoolTimeout: .seconds(Int64(settings.databasePoolTimeout))),
                          as: .trackingWriter, isDefault: false)
        app.rateLimitStore = settings.sharedRateLimits ? BatchedRateLimitStore() : MemoryRateLimitStore()
    case .sqliteMemory:
        app.databases.use(.sqlite(.memory, connectionPoolTimeout: .seconds(Int64(settings.databasePoolTimeout))), as: .sqlite)
        app.rateLimitStore = MemoryRateLimitStore()
    }
    app.useCredentialCache()
    app.secretBox = try SecretBox.load(settings: settings, logger: app.logger)
    app.auditSealKey = AuditSeal.derive(from: app.secretBox.key)
    AuditSeal.install(app.auditSealKey)
    app.migrations.add(Migrations.all(auditKey: app.auditSealKey))
    try await tuneSQLite(app, settings: settings)
    try await app.autoMigrate()

    let signingSecret: String
    if let configured = settings.secretKey {
        signingSecret = configured
    } else {
        signingSecret = try await InstanceSecrets.value(named: "jwt_signing", on: app.db)
    }
    app.csrfSecret = signingSecret
    let keys = JWTKeyCollection()
    // Hashing the configured secret gives a 256-bit key whatever length the operator chose.
    let signingKey = HMACKey(key: SymmetricKey(data: SHA256.hash(data: Data(signingSecret.utf8))))
    await keys.add(hmac: signingKey, digestAlgorithm: .sha256, kid: "bulwark")
    app.bulwarkKeys = keys
    if let oidc = settings.oidc {
        app.oidcVerifier = OIDCVerifier(settings: oidc, client: app.client)
    }

    useBundledResources(app)
    app.views.use(.leaf)
    app.middleware = Middlewares()
    app.middleware.use(SecurityHeadersMiddleware())
    app.middleware.use(APIErrorMiddleware())
    app.middleware.use(PublicFilesMiddleware(publicDirectory: app.directory.publicDirectory))
    app.middleware.use(PrincipalAuthenticator())
    app.middleware.use(RateLimitMiddleware(rules: settings.rateLimits, store: app.rateLimitStore))

    ListTotals.slowWalkSetting.withLockedValue { $0 = settings.listCountSlowAfter }
    app.mailer = settings.smtp.map { SMTPMailer(settings: $0, group: app.eventLoopGroup, logger: app.logger) }
        ?? LogMailer(logger: app.logger)
    try await syncBuiltinContent(app)
    app.sendOutcomes = GroupCommit(db: app.db) { outcomes, db in try await SendOutcome.write(outcomes, on: db) }
    app.botDetector = BotDetector(scannerWindow: settings.phishingScannerWindow, gatewayRanges: settings.phishingGatewayRanges)
    app.trackingWriter = try await TrackingEventWriter.make(app: app, directory: settings.journalDirectory)
    // Each query on any event loop's connection: one pinned connection would queue the lookups behind the journal's
    // writes.
    let lookupConcurrency = if case .postgres = settings.database { 4 } else { 2 }
    app.trackingTargets = CoalescingLookup(concurrency: lookupConcurrency) {
        [databases = app.databases, group = app.eventLoopGroup, logger = app.logger] tokens in
        try await TrackingTarget.find(tokens: tokens, on: databases.database(logger: logger, on: group.any())!)
    }
    app.jobWorker = JobWorker()
    registerJobs(app)

    try routes(app)
    registerCommands(app)
    // Registered last, so it runs first at shutdown: before the databases close.
    app.lifecycle.use(ProcessLifecycle())
}

private func registerJobs(_ app: Application) {
    let worker = app.jobWorker
    worker.register(TrainingSyncJob())
    worker.register(TrainingEnrolmentJob())
    worker.register(EscalationScanJob())
    worker.register(TrainingReminderJob())
    worker.register(PhishingSendJob())
    worker.register(PhishingLaunchJob())
    worker.schedule(RecurringJob(kind: PhishingSendJob.kind, interval: 2))
    worker.schedule(RecurringJob(kind: TrainingReminderJob.kind, interval: 900))
    worker.schedule(RecurringJob(kind: TrainingSyncJob.kind, interval: TrainingSyncJob.interval))
    worker.schedule(RecurringJob(kind: EscalationScanJob.kind, interval: 900))
}

/// WAL lets readers run beside the writer; NORMAL sync is durable at each checkpoint and much faster under WAL.
/// The busy timeout replaces SQLiteNIO's busy handler, which retries forever without sleeping: a statement waiting for
/// another connection's lock then sleeps (and gives up after 5 s) instead of spinning on a shared thread-pool thread.
/// The driver keeps one long-lived connection per event loop, so setting both once per event loop covers them all.
private func tuneSQLite(_ app: Application, settings: Settings) async throws {
    guard case .sqliteFile = settings.database else { return }
    // 16 MB of page cache per connection (SQLite's default is 2 MB): a million people's indexes stay in memory
    // instead of being read from the file on every page of a list or an export.
    for eventLoop in app.eventLoopGroup.makeIterator() {
        try await tuneSQLiteConnection(app.databases.database(.sqlite, logger: app.logger, on: eventLoop)!, cacheKB: 16_000)
    }
}

/// The settings of one SQLite connection (see `tuneSQLite`); `cacheKB` is its page cache.
func tuneSQLiteConnection(_ db: any Database, cacheKB: Int) async throws {
    try await db.sql.raw("PRAGMA busy_timeout=5000").run()
    try await db.sql.raw("PRAGMA journal_mode=WAL").run()
    try await db.sql.raw("PRAGMA synchronous=NORMAL").run()
    try await db.sql.raw("PRAGMA cache_size=-\(unsafeRaw: String(cacheKB))").run()
    // Checkpoints every 8,000 pages (32 MB of log) instead of 1,000: a page the tracking flusher changes again
    // and again is copied into the database once per checkpoint, and each checkpoint syncs the file. The
    // flusher stored 7,850 events/s with the default on a busy 2-core machine, 8,900 with this.
    try await db.sql.raw("PRAGMA wal_autocheckpoint=8000").run()
    // Statement journals (an upsert inside the flusher's transaction keeps one to undo a failed statement alone)
    // in memory rather than in a temporary file: 9% of the SQLite thread's time under tracking load was writing
    // that file.
    try await db.sql.raw("PRAGMA temp_store=MEMORY").run()
}

/// Views and stylesheets live in the checkout's Resources/ and Public/. When Bulwark runs from another directory
/// (e.g. a data directory), they are found beside the sources it was built from.
private func useBundledResources(_ app: Application, sourceFile: String = #filePath) {
    let views = app.directory.viewsDirectory
    guard !FileManager.default.fileExists(atPath: views) else { return }
    var root = URL(fileURLWithPath: sourceFile)
    for _ in 0..<4 { root.deleteLastPathComponent() } // App/ -> BulwarkApp/ -> Sources/ -> package root
    app.directory = DirectoryConfiguration(workingDirectory: root.path + "/")
}

/// Loads the built-in library (training modules, phishing templates) from Resources/Content into the database.
/// A folder whose files did not change since the last load is skipped, so a start costs a fingerprint, not a sync.
func syncBuiltinContent(_ app: Application) async throws {
    try await BuiltinContent.syncIfChanged(folder: "modules", app: app) { try await ModuleLibrary.sync(app) }
    try await BuiltinContent.syncIfChanged(folder: "phishing", app: app) { try await PhishingTemplateLibrary.sync(app) }
}

/// The JSON files of one folder of Resources/Content, decoded with snake_case keys, in file-name order.
enum BuiltinContent {
    static func directory(_ folder: String, app: Application) -> String {
        app.directory.workingDirectory + "Resources/Content/\(folder)/"
    }

    static func fileNames(_ folder: String, app: Application) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory(folder, app: app))) ?? []).filter { $0.hasSuffix(".json") }.sorted()
    }

    static func load<T: Decodable>(_ type: T.Type, folder: String, app: Application) throws -> [T] {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try fileNames(folder, app: app).map {
            try decoder.decode(T.self, from: Data(contentsOf: URL(fileURLWithPath: directory(folder, app: app) + $0)))
        }
    }

    /// SHA-256 over the folder's file names and contents.
    static func fingerprint(_ folder: String, app: Application) throws -> String {
        var hasher = SHA256()
        for name in fileNames(folder, app: app) {
            hasher.update(data: Data(name.utf8))
            hasher.update(data: try Data(contentsOf: URL(fileURLWithPath: directory(folder, app: app) + name)))
        }
        return hasher.finalize().hexString
    }

    static func syncIfChanged(folder: String, app: Application, sync: () async throws -> Void) async throws {
        let fingerprint = try fingerprint(folder, app: app)
        let stored = try await app.db.sql.raw("SELECT fingerprint FROM content_versions WHERE name = \(bind: folder)").first()
        if try stored?.decode(column: "fingerprint", as: String.self) == fingerprint { return }
        try await sync()
        try await app.db.sql.raw("""
            INSERT INTO content_versions (name, fingerprint) VALUES (\(bind: folder), \(bind: fingerprint))
            ON CONFLICT (name) DO UPDATE SET fingerprint = excluded.fingerprint
            """).run()
    }
}

struct CreateContentVersions: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.schema("content_versions")
            .field("name", .string, .identifier(auto: false))
            .field("fingerprint", .string, .required)
            .create()
    }

    func revert(on database: any Database) async throws {
        try await database.schema("content_versions").delete()
    }
}

extension Application {
    /// PostgreSQL connections each event loop's pool holds: the setting is per process, the pool per event loop.
    var databaseConnectionsPerLoop: Int {
        max(1, settings.databasePoolSize / max(1, Array(eventLoopGroup.makeIterator()).count))
    }
}
