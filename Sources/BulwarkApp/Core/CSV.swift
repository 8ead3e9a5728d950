import Foundation

/// RFC 4180 reading and formula-safe writing.
enum CSV {
    /// Parses quoted fields, doubled quotes, and CRLF or LF line ends. Blank lines are skipped.
    static func parse(_ text: String) -> [[String]] {
        var parser = Parser()
        return parser.feed(text.utf8) + parser.finish()
    }

    /// Reads CSV a piece at a time (a request body as it arrives), returning the rows each piece completes. Works on
    /// UTF-8 bytes: the characters that structure CSV are ASCII, so a multi-byte character split between pieces is
    /// simply joined again inside its field.
    struct Parser {
        /// The longest field and the most fields a row may have; past either the parser stops and says why, so a
        /// hostile body (a quote never closed, a line of commas) cannot grow memory without bound.
        var maxFieldBytes = 65_536
        var maxFieldsPerRow = 256
        private(set) var failure: String?
        private var row: [String] = []
        private var field: [UInt8] = []
        private var inQuotes = false
        /// A quote seen inside a quoted field: a doubled quote or the field's end, decided by the next byte.
        private var quotePending = false
        private var carriageReturn = false
        private var started = false

        mutating func feed(_ bytes: some Sequence<UInt8>) -> [[String]] {
            var rows: [[String]] = []
            for byte in bytes {
                guard failure == nil else { break }
                consume(byte, into: &rows)
            }
            return rows
        }

        mutating func finish() -> [[String]] {
            var rows: [[String]] = []
            guard failure == nil else { return rows }
            if quotePending { quotePending = false; inQuotes = false }
            if !field.isEmpty || !row.isEmpty { finishRow(into: &rows) }
            return rows
        }

        private mutating func consume(_ byte: UInt8, into rows: inout [[String]]) {
            if !started {
                started = true
                // A UTF-8 byte-order mark opens some spreadsheet exports.
                if byte == 0xEF { field.append(byte); return }
            }
            if field == [0xEF] || field == [0xEF, 0xBB] {
                if (field.count == 1 && byte == 0xBB) || (field.count == 2 && byte == 0xBF) {
                    field.append(byte)
                    if field.count == 3 { field.removeAll() }
                    return
                }
            }
            if carriageReturn {
                carriageReturn = false
                if byte == 0x0A { return }
            }
            if quotePending {
                quotePending = false
                if byte == 0x22 { field.append(0x22); return }
                inQuotes = false
            }
            if field.count >= maxFieldBytes {
                failure = "A field is longer than \(maxFieldBytes) bytes (a quote left open?)."
                return
            }
            if inQuotes {
                if byte == 0x22 { quotePending = true } else { field.append(byte) }
                return
            }
            switch byte {
            case 0x22: inQuotes = true
            case 0x2C:
                guard row.count < maxFieldsPerRow else {
                    failure = "A row has more than \(maxFieldsPerRow) fields."
                    return
                }
                row.append(String(decoding: field, as: UTF8.self))
                field.removeAll(keepingCapacity: true)
            case 0x0D: carriageReturn = true; finishRow(into: &rows)
            case 0x0A: finishRow(into: &rows)
            default: field.append(byte)
            }
        }

        private mutating func finishRow(into rows: inout [[String]]) {
            row.append(String(decoding: field, as: UTF8.self))
            field.removeAll(keepingCapacity: true)
            if !(row.count == 1 && row[0].isEmpty) { rows.append(row) }
            row = []
        }
    }

    /// One CSV line. Cells that a spreadsheet would run as a formula are prefixed with a quote.
    static func line(_ cells: [String]) -> String {
        var writer = Writer(columns: cells.count)
        for cell in cells { writer.text(cell) }
        writer.endLine()
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    /// Lines written cell by cell into one buffer (an export's page): ids, numbers and times go in as bytes, without a
    /// string each, since an export writes a million lines.
    struct Writer {
        private(set) var bytes: [UInt8] = []
        private var cellsInLine = 0
        /// Cells every line must have (the header's), checked in debug builds: a cell left out shifts every later
        /// column under the wrong heading.
        let columns: Int?

        init(columns: Int? = nil) {
            self.columns = columns
        }

        private mutating func separate() {
            if cellsInLine > 0 { bytes.append(UInt8(ascii: ",")) }
            cellsInLine += 1
        }

        /// Quoted when it holds a comma, a quote or a line break; prefixed with a quote when a spreadsheet would run it
        /// as a formula. Nil is an empty cell.
        mutating func text(_ value: String?) {
            separate()
            guard var cell = value else { return }
            cell.withUTF8 { utf8 in
                let formula = utf8.first.map { [UInt8(ascii: "="), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "@"), 0x09, 0x0D].contains($0) } ?? false
                // Bytes, not Characters: the characters that need quoting are ASCII.
                let quoted = utf8.contains { $0 == 0x2C || $0 == 0x22 || $0 == 0x0A || $0 == 0x0D }
                if quoted { bytes.append(0x22) }
                if formula { bytes.append(UInt8(ascii: "'")) }
                if quoted {
                    for byte in utf8 {
                        bytes.append(byte)
                        if byte == 0x22 { bytes.append(0x22) }
                    }
                } else {
                    bytes.append(contentsOf: utf8)
                }
                if quoted { bytes.append(0x22) }
            }
        }

        /// Lowercase, as every response writes ids.
        mutating func id(_ value: UUID?) {
            separate()
            if let value { value.appendLowercased(to: &bytes) }
        }

        mutating func number(_ value: Int?) {
            guard let value, value >= 0 else {
                // A minus sign opens a formula: written as text, with its quote.
                text(value.map { String($0) })
                return
            }
            separate()
            bytes.appendDecimal(value)
        }

        mutating func time(_ value: Date?) {
            separate()
            if let value { ISO8601.append(value, to: &bytes) }
        }

        mutating func endLine() {
            assert(columns == nil || cellsInLine == columns, "a CSV line of \(cellsInLine) cells under \(columns ?? 0) headings")
            bytes.append(contentsOf: [0x0D, 0x0A])
            cellsInLine = 0
        }
    }
}
