/// The JSON Schema of a query parameter, by its name: the catalogue names parameters, and names carry their types
/// consistently across every route (`page` is always an integer, `*_id` always an identifier).
enum QueryParameter {
    static func schema(_ name: String) -> [String: Any] {
        switch name {
        case "page":
            return ["type": "integer", "minimum": 1, "maximum": PageParams.maxPage, "default": 1]
        case "per_page", "perPage":
            return ["type": "integer", "minimum": 1, "maximum": PageParams.maxPerPage, "default": PageParams.defaultPerPage]
        case "from", "to":
            return ["type": "string", "format": "date-time"]
        case "builtin", "acknowledged":
            return ["type": "boolean"]
        case "format":
            return ["type": "string", "enum": ["csv", "json"], "default": "csv"]
        case "depth":
            return ["type": "string", "enum": ["direct", "all"], "default": "direct"]
        case "cursor":
            return ["type": "string", "description": "The previous page's pagination.next_cursor: the page after it, by position in the order"]
        case "sort":
            return ["type": "string", "description": "A field name; prefix - for descending"]
        case let name where name.hasSuffix("_id") || name.hasSuffix("Id"):
            return ["type": "string", "format": "uuid"]
        default:
            return ["type": "string"]
        }
    }
}
