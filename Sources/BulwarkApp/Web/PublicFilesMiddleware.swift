import Foundation
import Vapor

/// Serves the files of `Public/` (stylesheets, scripts) through Vapor's `FileMiddleware`, asked only for paths under
/// what `Public/` holds at start. `FileMiddleware` alone looks every request's path up on disk, a `stat` on the
/// blocking thread pool and two thread hand-offs for each API call, tracking hit and health check (7% of an
/// authenticated request's CPU).
struct PublicFilesMiddleware: AsyncMiddleware {
    private let files: FileMiddleware
    /// "/css/", "/js/": a top-level directory; "/robots.txt": a top-level file. Read at start: an entry added to the
    /// top of `Public/` later is served after a restart.
    let prefixes: [String]

    init(publicDirectory: String) {
        files = FileMiddleware(publicDirectory: publicDirectory)
        let directory = URL(fileURLWithPath: publicDirectory, isDirectory: true)
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        // Hidden entries are not served, as FileMiddleware would not; `.well-known` (ACME, security.txt) is.
        prefixes = entries.filter { !$0.hasPrefix(".") || $0 == ".well-known" }.sorted().map { name in
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path, isDirectory: &isDirectory)
            return isDirectory.boolValue ? "/\(name)/" : "/\(name)"
        }
    }

    func serves(_ path: String) -> Bool {
        prefixes.contains { $0.hasSuffix("/") ? path.hasPrefix($0) : path == $0 }
    }

    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        // The request's collapsed path, worked out once and kept for the rate limiter and the response (`url.path`
        // would parse the URI again here).
        guard serves(request.routePath) else { return try await next.respond(to: request) }
        return try await files.respond(to: request, chainingTo: next)
    }
}
