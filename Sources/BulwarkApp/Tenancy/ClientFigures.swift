import Fluent
import Vapor

/// Figures other features contribute to a client object: seed 002 shows `policy_count` and `assessment_count`.
/// The feature that owns policies and assessment events registers its counter here (Tenancy never reads another
/// feature's tables); a client with nothing registered has none of those things yet, so it counts 0.
struct ClientFigures: Sendable {
    /// Rows per client for the given clients, in one grouped query.
    typealias Counter = @Sendable (_ db: any Database, _ clientIDs: [UUID]) async throws -> [UUID: Int]

    var policies: Counter?
    var assessments: Counter?

    struct Counts: Sendable {
        var policies = 0
        var assessments = 0
    }

    func counts(for clientIDs: [UUID], on db: any Database) async throws -> [UUID: Counts] {
        guard !clientIDs.isEmpty else { return [:] }
        let policyCounts = try await policies?(db, clientIDs) ?? [:]
        let assessmentCounts = try await assessments?(db, clientIDs) ?? [:]
        return Dictionary(uniqueKeysWithValues: clientIDs.map {
            ($0, Counts(policies: policyCounts[$0] ?? 0, assessments: assessmentCounts[$0] ?? 0))
        })
    }
}

extension Application {
    private struct ClientFiguresKey: StorageKey { typealias Value = ClientFigures }

    var clientFigures: ClientFigures {
        get { storage[ClientFiguresKey.self] ?? ClientFigures() }
        set { storage[ClientFiguresKey.self] = newValue }
    }
}
