import Logging
import Vapor

/// Called by the `bulwark` executable: `serve` (default), `migrate`, `routes`, `create-admin`, `create-api-key`,
/// `audit-verify`.
public enum Entrypoint {
    public static func main() async throws {
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
