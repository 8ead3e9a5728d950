import FluentKit
import Foundation
import NIOConcurrencyHelpers
import SQLKit

/// Which part of a search term the trigram index (SQLite FTS5, PostgreSQL `pg_trgm`) is asked for. A phrase query reads the postings of every
/// trigram in it, and a trigram that nearly every person has ("las" of "Last…", the "@acme.test" of every email) has
/// a posting per person: at a million people, most of a search's time. Such trigrams narrow nothing, so the index is
/// asked for the runs of the term between them (each a phrase, all required); the substring test that follows
/// confirms every row as before, so results do not change, only what the index reads.
///
/// Which trigrams are common is learnt from a random sample of people, at most every `maxAge` seconds. It is a hint
/// shared by the process (a stale or foreign sample makes a search slower, never wrong).
enum SearchTrigrams {
    static let sampleSize = 1_000
    /// A trigram in at least this share of the sample is common.
    static let commonShare = 0.2
    static let maxAge: TimeInterval = 600

    private static let learnt = NIOLockedValueBox<(common: Set<String>, at: Date)?>(nil)

    /// The parts of `term` the index is asked for: its runs of uncommon trigrams, or the whole term (lowercased) when
    /// every trigram is common or it is too short to have one. Each is a substring of the term.
    static func runs(of term: String, common: Set<String>) -> [String] {
        let scalars = Array(term.lowercased().unicodeScalars)
        func text(_ range: Range<Int>) -> String {
            var text = ""
            text.unicodeScalars.append(contentsOf: scalars[range])
            return text
        }
        guard scalars.count >= 3 else { return [text(0..<scalars.count)] }
        var runs: [Range<Int>] = []
        var start: Int?
        for (index, trigram) in trigrams(scalars).enumerated() {
            if common.contains(trigram) {
                if let first = start { runs.append(first..<(index + 2)); start = nil }
            } else if start == nil {
                start = index
            }
        }
        if let first = start { runs.append(first..<scalars.count) }
        return runs.isEmpty ? [text(0..<scalars.count)] : runs.map(text)
    }

    /// The FTS5 query for `term`: each run as a phrase (quotes doubled, so nothing in it is query syntax), all required.
    static func query(for term: String, common: Set<String>) -> String {
        runs(of: term, common: common).map { "\"" + $0.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }
            .joined(separator: " AND ")
    }

    /// The common trigrams of the people table, from the last sample or a fresh one.
    static func common(on db: any Database, maxAge: TimeInterval = SearchTrigrams.maxAge) async throws -> Set<String> {
        let now = Date()
        if let known = learnt.withLockedValue({ $0 }), now.timeIntervalSince(known.at) <= maxAge { return known.common }
        let fresh = try await sample(on: db)
        learnt.withLockedValue { $0 = (fresh, now) }
        return fresh
    }

    /// A lowercased text's trigrams in order, by scalar (FTS5's trigram tokenizer counts characters, not bytes).
    private static func trigrams(_ scalars: [Unicode.Scalar]) -> [String] {
        guard scalars.count >= 3 else { return [] }
        return (0...(scalars.count - 3)).map { String(String.UnicodeScalarView(scalars[$0..<($0 + 3)])) }
    }

    private static func sample(on db: any Database) async throws -> Set<String> {
        let document = UserSearch.document
        let documents: [String]
        switch db.sql.dialect.name {
        case "sqlite":
            guard let bounds = try await db.sql.raw("SELECT MIN(rowid) AS low, MAX(rowid) AS high FROM users").first(),
                  let low = try bounds.decode(column: "low", as: Int64?.self),
                  let high = try bounds.decode(column: "high", as: Int64?.self), high >= low else { return [] }
            let rowIDs = Set((0..<sampleSize).map { _ in Int64.random(in: low...high) })
            documents = try await db.sql.raw("""
                SELECT \(unsafeRaw: document) AS doc FROM users WHERE rowid IN (\(binds: Array(rowIDs)))
                """).all().map { try $0.decode(column: "doc", as: String.self) }
        case "postgresql":
            // Random pages (1% of them), not a scan.
            documents = try await db.sql.raw("""
                SELECT \(unsafeRaw: document) AS doc FROM users TABLESAMPLE SYSTEM (1) LIMIT \(bind: sampleSize)
                """).all().map { try $0.decode(column: "doc", as: String.self) }
        default:
            return []
        }
        guard documents.count >= 50 else { return [] }
        var counts: [String: Int] = [:]
        for document in documents {
            for trigram in Set(trigrams(Array(document.lowercased().unicodeScalars))) { counts[trigram, default: 0] += 1 }
        }
        let threshold = Int((Double(documents.count) * commonShare).rounded(.up))
        return Set(counts.filter { $0.value >= threshold }.keys)
    }
}
