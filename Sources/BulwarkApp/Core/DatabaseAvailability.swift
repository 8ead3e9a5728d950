import FluentPostgresDriver
import FluentSQLiteDriver
import NIOCore

/// Tells a database that cannot be reached (down, restarting, every connection busy) from a query that failed: the
/// first answers 503 with Retry-After, so clients and load balancers wait and retry instead of reporting a bug.
enum DatabaseAvailability {
    static func isUnavailable(_ error: any Error) -> Bool {
        switch error {
        case is ConnectionPoolTimeoutError: return true
        case let pool as ConnectionPoolError: return pool == .shutdown
        case let psql as PSQLError:
            if psql.code == .server, let state = psql.serverInfo?[.sqlState] {
                // 57P0x: shutting down, starting up, crashed; 08xxx: connection exceptions; 53300: too many connections.
                return state.hasPrefix("57P") || state.hasPrefix("08") || state == "53300"
            }
            return [.connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed]
                .contains(psql.code)
        // A transaction that read before another connection wrote cannot write on its old snapshot (BUSY_SNAPSHOT,
        // at once, whatever the busy timeout): like a busy database, it passes on a later try.
        case let sqlite as SQLiteError: return [.busy, .busyInSnapshot, .busyTimeout].contains(sqlite.reason)
        case is NIOConnectionError, ChannelError.ioOnClosedChannel, ChannelError.alreadyClosed: return true
        default: return false
        }
    }
}

extension DatabaseAvailability {
    /// The database refused the data itself (a value it cannot hold, a constraint): trying the same row again can never
    /// work. Anything else (a deadlock, a full disk, a timeout) may pass on a later try.
    static func isDataError(_ error: any Error) -> Bool {
        switch error {
        case let psql as PSQLError:
            guard psql.code == .server, let state = psql.serverInfo?[.sqlState] else { return false }
            return state.hasPrefix("22") || state.hasPrefix("23")
        case let sqlite as SQLiteError:
            return [.constraint, .mismatch, .tooBig, .range].contains(sqlite.reason)
                || String(describing: sqlite.reason).hasPrefix("constraint")
        default:
            return false
        }
    }
}

extension APIError {
    static var databaseUnavailable: APIError {
        var error = APIError(status: .serviceUnavailable, code: "SERVICE_UNAVAILABLE",
                             message: "The database is not reachable right now; try again shortly.", details: nil)
        error.headers.replaceOrAdd(name: "Retry-After", value: "5")
        return error
    }
}
