import Logging
import NIOCore
import NIOPosix
import Vapor

/// Called by the `bulwark` executable: `serve` (default), `migrate`, `routes`, `create-admin`, `create-api-key`,
/// `audit-verify`.
public enum Entrypoint {
    public static func main() async throws {
        // Async code then runs on the event loops themselves instead of hopping to Swift's own pool and back on
        // every await of a request (that hop was most of an authenticated GET's cost). Blocking work (bcrypt, files)
        // already goes to the application's thread pool.
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        var env = try Environment.detect()
        try LoggingSystem.bootstrap(from: &env)
        let app = try await Application.make(env)
        do {
            try await configure(app)
            let command = CommandLine.arguments.dropFirst().first
            if command == nil || command == "serve" {
                try await FirstStart.ensureAdmin(app)
                // Only a serving process runs the background worker; one-off commands must not start sending mail.
                app.startsJobWorker = app.settings.runJobWorker
                app.isServing = true
            }
            try await app.execute()
        } catch {
            app.logger.report(error: error)
            try? await app.asyncShutdown()
            throw error
        }
        try await app.asyncShutdown()
    }
}
