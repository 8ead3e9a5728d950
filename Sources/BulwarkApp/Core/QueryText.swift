import Vapor

extension Request {
    /// The query-string parameter `name` as text: what `query[String.self, at: name]` answers, with the query string
    /// decoded once per request instead of once per parameter read (a list reads five or six; each decode walked the
    /// whole query string, 6% of a list's CPU). A query string that does not decode as plain name=value pairs (arrays,
    /// nested keys) is read parameter by parameter, as before.
    func queryText(_ name: String) -> String? {
        let decoded: DecodedQuery
        if let known = storage[DecodedQueryKey.self] {
            decoded = known
        } else {
            // The decoder `query` itself uses, so both read the same however the application configures it.
            decoded = DecodedQuery(values: url.query == nil
                ? [:] : try? ContentConfiguration.global.requireURLDecoder().decode([String: String].self, from: url))
            storage[DecodedQueryKey.self] = decoded
        }
        guard let values = decoded.values else { return query[String.self, at: name] }
        return values[name]
    }
}

private struct DecodedQuery: Sendable {
    /// nil when the query string is more than flat pairs.
    let values: [String: String]?
}

private struct DecodedQueryKey: StorageKey {
    typealias Value = DecodedQuery
}
