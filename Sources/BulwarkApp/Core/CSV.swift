import Foundation

/// RFC 4180 reading and formula-safe writing.
enum CSV {
    /// Parses quoted fields, doubled quotes, and CRLF or LF line ends. Blank lines are skipped.
    static func parse(_ text: String) -> [[String]] {
        var rows: [[String]] = []
        var row: [String] = []
        var field = ""
        var inQuotes = false
        var iterator = Array(text.unicodeScalars).makeIterator()
        var pending: Unicode.Scalar? = iterator.next()
        func finishRow() {
            row.append(field)
            field = ""
            if !(row.count == 1 && row[0].isEmpty) { rows.append(row) }
            row = []
        }
        while let scalar = pending {
            pending = iterator.next()
            if inQuotes {
                if scalar == "\"" {
                    if pending == "\"" { field.unicodeScalars.append("\""); pending = iterator.next() }
                    else { inQuotes = false }
                } else {
                    field.unicodeScalars.append(scalar)
                }
                continue
            }
            switch scalar {
            case "\"": inQuotes = true
            case ",": row.append(field); field = ""
            case "\r": if pending == "\n" { pending = iterator.next() }; finishRow()
            case "\n": finishRow()
            case "\u{FEFF}" where row.isEmpty && field.isEmpty && rows.isEmpty: break
            default: field.unicodeScalars.append(scalar)
            }
        }
        if !field.isEmpty || !row.isEmpty { finishRow() }
        return rows
    }

    /// One CSV line. Cells that a spreadsheet would run as a formula are prefixed with a quote.
    static func line(_ cells: [String]) -> String {
        cells.map(escape).joined(separator: ",") + "\r\n"
    }

    static func escape(_ cell: String) -> String {
        var value = cell
        if let first = value.unicodeScalars.first, ["=", "+", "-", "@", "\t", "\r"].contains(first) {
            value = "'" + value
        }
        if value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
            value = "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return value
    }
}
