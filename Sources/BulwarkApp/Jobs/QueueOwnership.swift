import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// On SQLite, one process owns the job queue: it holds an exclusive lock on `<database>.jobs.lock` for as long as it
/// runs. Whoever gets the lock knows every job still marked running was left by a process that is gone, and hands it
/// back at once instead of waiting for a lease to run out. A second process (another server on the same file, or
/// `bulwark run-jobs` beside a server) does not get the lock and runs no jobs. The kernel drops the lock when the
/// process dies, however it dies.
final class QueueOwnership: Sendable {
    let path: String
    private let descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    /// The lock, or nil when another live process holds it.
    static func acquire(forDatabaseAt databasePath: String) throws -> QueueOwnership? {
        // The real path: two names for one database (a symlink, a relative path) must meet at one lock.
        let resolved = realpath(databasePath, nil).map { pointer in
            defer { free(pointer) }
            return String(cString: pointer)
        } ?? databasePath
        let path = resolved + ".jobs.lock"
        let descriptor = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            throw ConfigurationError("The job queue lock \(path) cannot be opened (\(String(cString: strerror(errno)))).")
        }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            close(descriptor)
            return nil
        }
        return QueueOwnership(path: path, descriptor: descriptor)
    }

    deinit {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}
