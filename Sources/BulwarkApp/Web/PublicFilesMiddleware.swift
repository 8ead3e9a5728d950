import Foundation
import Vapor

/// Serves the files of `Public/` (stylesheets, scripts) through Vapor's `FileMiddleware`, asked only for paths under
/// what `Public/` holds at start. `FileMiddleware` alone looks every request's path up on disk, a `stat` on the
/// blocking thread pool and two thread hand-offs for each API call, tracking hit and health check (7% of an
/// authenticated request's CPU).
struct PublicFilesMiddleware: AsyncMiddleware {
    private let files: FileMiddleware
    /// "/css/", "/js/": a top-level directory; "/robots.txt": a top-level file.
    private let prefixes: [String]

    init(publicDirectory: String) {
        files = FileMiddleware(publicDirectory: publicDirectory)
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: publicDirectory)) ?? []
        prefixes = entries.filter { !$0.hasPrefix(".") }.sorted().map { name in
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: publicDirectory + name, isDirectory: &isDirectory)
            return isDirectory.boolValue ? "/\(name)/" : "/\(name)"
        }
    }

    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        let path = request.url.path
        guard prefixes.contains(where: { $0.hasSuffix("/") ? path.hasPrefix($0) : path == $0 }) else {
            return try await next.respond(to: request)
        }
        return try await files.respond(to: request, chainingTo: next).get()
    }
}
