import Vapor

/// bcrypt on the thread pool so hashing never blocks an event loop.
struct PasswordHasher: Sendable {
    let cost: Int
    let threadPool: NIOThreadPool

    func hash(_ password: String) async throws -> String {
        let cost = self.cost
        return try await threadPool.runIfActive { try Bcrypt.hash(password, cost: cost) }
    }

    func verify(_ password: String, hash: String) async throws -> Bool {
        try await threadPool.runIfActive { try Bcrypt.verify(password, created: hash) }
    }
}

extension Application {
    private struct BcryptCostKey: StorageKey { typealias Value = Int }

    /// bcrypt cost: 12 in production; tests lower it to keep the suite fast.
    var bcryptCost: Int {
        get { storage[BcryptCostKey.self] ?? 12 }
        set { storage[BcryptCostKey.self] = newValue }
    }

    var passwordHasher: PasswordHasher { PasswordHasher(cost: bcryptCost, threadPool: threadPool) }
}
