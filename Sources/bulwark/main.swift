import BulwarkApp
import Foundation

do {
    try await Entrypoint.main()
} catch {
    // Entrypoint has already logged the reason; exit non-zero without a crash report.
    exit(1)
}
