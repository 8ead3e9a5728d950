import FluentKit
import FluentSQL
import SQLKit

extension QueryBuilder {
    /// Case-insensitive substring match on any of `columns`, the same on SQLite and PostgreSQL.
    @discardableResult
    func search(_ term: String, in columns: [String]) -> Self {
        let pattern = Self.likePattern(term)
        return group(.or) { group in
            for column in columns {
                group.filter(.sql(embed: "LOWER(\(ident: Model.schema).\(ident: column)) LIKE \(bind: pattern) ESCAPE '\\'"))
            }
        }
    }
}

extension QueryBuilder {
    /// `%term%`, lowercased, with LIKE's wildcards escaped (use with `ESCAPE '\\'`).
    static func likePattern(_ term: String) -> String {
        let escaped = term.lowercased()
            .replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "%", with: "\\%")
            .replacingOccurrences(of: "_", with: "\\_")
        return "%\(escaped)%"
    }
}

/// `sort=field` or `sort=-field` against an allow-list of columns.
struct SortOrder: Sendable {
    let column: String
    let descending: Bool

    init?(_ text: String?, allowed: [String], errors: inout FieldErrors) {
        guard let text, !text.isEmpty else { return nil }
        let descending = text.hasPrefix("-")
        let column = descending ? String(text.dropFirst()) : text
        guard allowed.contains(column) else {
            errors.add("sort", "The sort must be one of: \(allowed.joined(separator: ", ")) (prefix - for descending).")
            return nil
        }
        self.column = column
        self.descending = descending
    }
}
