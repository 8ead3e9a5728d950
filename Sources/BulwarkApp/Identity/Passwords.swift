import NIOConcurrencyHelpers
import Vapor

/// bcrypt on the thread pool so hashing never blocks an event loop.
struct PasswordHasher: Sendable {
    let cost: Int
    let threadPool: NIOThreadPool
    /// Password checks this application has run: every sign-in attempt must cost exactly one, whatever the account.
    let checks: NIOLockedValueBox<Int>

    func hash(_ password: String) async throws -> String {
        let cost = self.cost
        return try await threadPool.runIfActive { try Bcrypt.hash(password, cost: cost) }
    }

    func verify(_ password: String, hash: String) async throws -> Bool {
        checks.withLockedValue { $0 += 1 }
        return try await threadPool.runIfActive { try Bcrypt.verify(password, created: hash) }
    }
}

extension Application {
    private struct BcryptCostKey: StorageKey { typealias Value = Int }

    /// bcrypt cost: 12 in production; tests lower it to keep the suite fast.
    var bcryptCost: Int {
        get { storage[BcryptCostKey.self] ?? 12 }
        set { storage[BcryptCostKey.self] = newValue }
    }

    private struct SignInStateKey: StorageKey { typealias Value = SignInState }

    /// Created in `configure`, before any request: storage is not written to while requests run.
    var signInState: SignInState {
        get { storage[SignInStateKey.self] ?? SignInState() }
        set { storage[SignInStateKey.self] = newValue }
    }

    var passwordHasher: PasswordHasher { PasswordHasher(cost: bcryptCost, threadPool: threadPool, checks: signInState.passwordChecks) }
}

/// Per-application state of sign-in: the count of password checks and the decoy hash (see `LoginAttempts`).
struct SignInState: Sendable {
    let passwordChecks = NIOLockedValueBox(0)
    let decoyHash = NIOLockedValueBox<String?>(nil)
}
