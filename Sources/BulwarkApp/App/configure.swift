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
    try await configure(app, settings: Settings.fromEnvironment(app.environment))
}

func configure(_ app: Application, settings: Settings) async throws {
    app.settings = settings
    BulwarkMetrics.bootstrapOnce()
    app.http.server.configuration.hostname = settings.hostname
    app.http.server.configuration.port = settings.port

    switch settings.database {
    case let .postgres(url):
        app.databases.use(try .postgres(url: url, maxConnectionsPerEventLoop: 8), as: .psql)
        app.rateLimitStore = DatabaseRateLimitStore()
    case let .sqliteFile(path):
        app.databases.use(.sqlite(.file(path)), as: .sqlite)
        app.rateLimitStore = settings.sharedRateLimits ? DatabaseRateLimitStore() : MemoryRateLimitStore()
    case .sqliteMemory:
        app.databases.use(.sqlite(.memory), as: .sqlite)
        app.rateLimitStore = MemoryRateLimitStore()
    }
    app.migrations.add(Migrations.all)
    try await tuneSQLite(app, settings: settings)
    try await app.autoMigrate()

    app.secretBox = try SecretBox.load(settings: settings, logger: app.logger)
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
    app.middleware.use(APIErrorMiddleware())
    app.middleware.use(FileMiddleware(publicDirectory: app.directory.publicDirectory))
    app.middleware.use(PrincipalAuthenticator())
    app.middleware.use(RateLimitMiddleware())

    app.mailer = settings.smtp.map { SMTPMailer(settings: $0, group: app.eventLoopGroup, logger: app.logger) }
        ?? LogMailer(logger: app.logger)
    try await syncBuiltinContent(app)
    app.trackingWriter = TrackingEventWriter(db: app.db)
    app.botDetector = BotDetector(scannerWindow: settings.phishingScannerWindow, gatewayRanges: settings.phishingGatewayRanges)
    registerJobs(app)

    try routes(app)
    registerCommands(app)
}

private func registerJobs(_ app: Application) {
    let worker = app.jobWorker
    worker.register(TrainingSyncJob())
    worker.register(EscalationScanJob())
    worker.register(TrainingReminderJob())
    worker.register(PhishingSendJob())
    worker.schedule(RecurringJob(kind: PhishingSendJob.kind, interval: 2))
    worker.schedule(RecurringJob(kind: TrainingReminderJob.kind, interval: 900))
    worker.schedule(RecurringJob(kind: TrainingSyncJob.kind, interval: 60))
    worker.schedule(RecurringJob(kind: EscalationScanJob.kind, interval: 900))
}

/// WAL lets readers run beside the writer; NORMAL sync is durable at each checkpoint and much faster under WAL.
private func tuneSQLite(_ app: Application, settings: Settings) async throws {
    guard case .sqliteFile = settings.database else { return }
    for eventLoop in app.eventLoopGroup.makeIterator() {
        let db = app.databases.database(.sqlite, logger: app.logger, on: eventLoop)!
        try await db.sql.raw("PRAGMA journal_mode=WAL").run()
        try await db.sql.raw("PRAGMA synchronous=NORMAL").run()
    }
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
func syncBuiltinContent(_ app: Application) async throws {
    try await ModuleLibrary.sync(app)
    try await PhishingTemplateLibrary.sync(app)
}

/// The JSON files of one folder of Resources/Content, decoded with snake_case keys, in file-name order.
enum BuiltinContent {
    static func load<T: Decodable>(_ type: T.Type, folder: String, app: Application) throws -> [T] {
        let directory = app.directory.workingDirectory + "Resources/Content/\(folder)/"
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".json") }.sorted()
        return try names.map { try decoder.decode(T.self, from: Data(contentsOf: URL(fileURLWithPath: directory + $0))) }
    }
}
