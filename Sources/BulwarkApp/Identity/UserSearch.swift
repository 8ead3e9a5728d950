import Fluent
import SQLKit
import Vapor

/// Finding people by name or email without reading every row: a trigram index over "first last email" (SQLite FTS5
/// with the trigram tokenizer, kept by triggers; PostgreSQL `pg_trgm` GIN on the same expression). The index narrows,
/// and the same case-insensitive substring test on each column as before confirms, so results do not change. The
/// index is asked only for the term's uncommon parts (`SearchTrigrams`).
///
/// Terms shorter than three characters cannot use a trigram index; they (and, on SQLite, terms so common that the
/// index would name more than `ListTotals.exactLimit` people) walk the list's ordered index instead, which stops as
/// soon as a page is filled because such terms match densely.
enum UserSearch {
    static let columns = ["first_name", "last_name", "email"]

    static func apply(_ term: String, to query: QueryBuilder<User>, on db: any Database) async throws {
        query.search(term, in: columns)
        guard term.count >= 3 else { return }
        switch db.sql.dialect.name {
        case "sqlite":
            // The index is read once: the matching rows' ids then serve the count and the page (a phrase of common
            // trigrams is the expensive part of a search).
            let match = SearchTrigrams.query(for: term, common: try await SearchTrigrams.common(on: db))
            let rowIDs = try await db.sql.raw("""
                SELECT rowid AS id FROM users_search WHERE users_search MATCH \(bind: match) LIMIT \(bind: ListTotals.exactLimit + 1)
                """).all().map { try $0.decode(column: "id", as: Int64.self) }
            if rowIDs.isEmpty {
                query.filter(.sql(unsafeRaw: "1 = 0"))
            } else if rowIDs.count <= ListTotals.exactLimit {
                query.filter(.sql(embed: "\(ident: User.schema).rowid IN (\(binds: rowIDs))"))
            }
        case "postgresql":
            // The index answers each run's LIKE (a GIN bitmap per run, ANDed); the substring test above confirms.
            for run in SearchTrigrams.runs(of: term, common: try await SearchTrigrams.common(on: db)) {
                query.filter(.sql(embed: "\(unsafeRaw: postgresDocument) LIKE \(bind: QueryBuilder<User>.likePattern(run)) ESCAPE '\\'"))
            }
        default:
            return
        }
    }

    /// The indexed expression, written the same way in the index and the query so the planner matches them.
    static let postgresDocument = "lower(users.first_name || ' ' || users.last_name || ' ' || users.email)"

    /// What the SQLite index holds for a person (and what `SearchTrigrams` samples).
    static let document = "first_name || ' ' || last_name || ' ' || email"
}

/// Creates the search index and its upkeep; existing people are indexed once here.
struct CreateUserSearchIndex: AsyncMigration {
    func prepare(on database: any Database) async throws {
        let sql = database.sql
        switch sql.dialect.name {
        case "sqlite":
            let document = UserSearch.document
            try await sql.raw("""
                CREATE VIRTUAL TABLE IF NOT EXISTS users_search USING fts5(doc, content='', contentless_delete=1, tokenize='trigram')
                """).run()
            try await sql.raw("INSERT INTO users_search(rowid, doc) SELECT rowid, \(unsafeRaw: document) FROM users").run()
            try await sql.raw("""
                CREATE TRIGGER IF NOT EXISTS users_search_insert AFTER INSERT ON users BEGIN
                    INSERT INTO users_search(rowid, doc) VALUES (new.rowid, new.\(unsafeRaw: document.replacingOccurrences(of: "|| ' ' || ", with: "|| ' ' || new.")));
                END
                """).run()
            try await sql.raw("""
                CREATE TRIGGER IF NOT EXISTS users_search_update AFTER UPDATE OF first_name, last_name, email ON users BEGIN
                    DELETE FROM users_search WHERE rowid = old.rowid;
                    INSERT INTO users_search(rowid, doc) VALUES (new.rowid, new.\(unsafeRaw: document.replacingOccurrences(of: "|| ' ' || ", with: "|| ' ' || new.")));
                END
                """).run()
            try await sql.raw("""
                CREATE TRIGGER IF NOT EXISTS users_search_delete AFTER DELETE ON users BEGIN
                    DELETE FROM users_search WHERE rowid = old.rowid;
                END
                """).run()
        case "postgresql":
            do {
                try await sql.raw("CREATE EXTENSION IF NOT EXISTS pg_trgm").run()
            } catch {
                database.logger.warning("""
                    pg_trgm could not be enabled (\(String(reflecting: error))); people search reads every row until a \
                    database owner runs CREATE EXTENSION pg_trgm and Bulwark restarts.
                    """)
                return
            }
            try await sql.raw("""
                CREATE INDEX IF NOT EXISTS users_search_trgm_idx ON users USING gin ((\(unsafeRaw: UserSearch.postgresDocument.replacingOccurrences(of: "users.", with: ""))) gin_trgm_ops)
                """).run()
        default:
            return
        }
    }

    func revert(on database: any Database) async throws {
        let sql = database.sql
        if sql.dialect.name == "sqlite" {
            for trigger in ["users_search_insert", "users_search_update", "users_search_delete"] {
                try await sql.raw("DROP TRIGGER IF EXISTS \(ident: trigger)").run()
            }
            try await sql.raw("DROP TABLE IF EXISTS users_search").run()
        } else {
            try await sql.raw("DROP INDEX IF EXISTS users_search_trgm_idx").run()
        }
    }
}

/// Lists of people read the rows that are not deleted, in the list's order: partial indexes that hold exactly those
/// (the queries say `status <> 'deleted'` literally, so both databases can use them), with the sort columns.
struct CreateUserListIndexes: AsyncMigration {
    static let indexes: [(name: String, columns: [String])] = [
        ("users_client_names_live_idx", ["client_id", "last_name", "first_name", "id"]),
        ("users_created_live_idx", ["created_at", "id"]),
        ("users_client_created_live_idx", ["client_id", "created_at", "id"]),
        ("users_company_created_live_idx", ["company_id", "created_at", "id"]),
    ]

    func prepare(on database: any Database) async throws {
        for index in Self.indexes {
            try await database.createIndex(on: User.schema, name: index.name, columns: index.columns, partial: User.notDeleted)
        }
    }

    func revert(on database: any Database) async throws {
        for index in Self.indexes { try await database.dropIndex(index.name) }
    }
}

/// `users_client_id_idx` (client, names, id) duplicated `users_client_names_live_idx` for every live person; lookups by
/// client alone use `users_client_walk_idx` (client, id). One index fewer to maintain for each person written.
struct DropUsersClientNamesIndex: AsyncMigration {
    func prepare(on database: any Database) async throws {
        try await database.dropIndex("users_client_id_idx")
    }

    func revert(on database: any Database) async throws {
        try await database.createIndex(on: User.schema, name: "users_client_id_idx", columns: ["client_id", "last_name", "first_name", "id"])
    }
}

extension User {
    /// The live-people condition, literal (a bound value would keep the partial indexes out of reach).
    static let notDeleted = "status <> 'deleted'"
}
