import Vapor

/// Streams an export page by page from the database, so memory stays flat however many rows there are.
enum ExportStream {
    enum Format: String {
        case csv, json

        /// `format=csv|json` from the query string (CSV when absent).
        static func parse(_ req: Request, errors: inout FieldErrors) -> Format {
            errors.oneOf(req.queryText("format") ?? "csv", field: "format", allowed: ["csv", "json"]).flatMap(Format.init) ?? .csv
        }
    }

    /// `nextPage(after:)` returns the rows after the given cursor and the cursor of the last row (nil when done);
    /// `csvLine` writes a row's cells, in the order of `header`.
    static func response<Row: Encodable & Sendable>(
        app: Application, format: Format, filename: String, header: [String],
        csvLine: @escaping @Sendable (Row, inout CSV.Writer) -> Void,
        keyStyle: KeyStyle, nextPage: @escaping @Sendable (_ after: String?) async throws -> (rows: [Row], cursor: String?)
    ) -> Response {
        var headers = HTTPHeaders()
        headers.contentType = format == .csv ? HTTPMediaType(type: "text", subType: "csv", parameters: ["charset": "utf-8"]) : .json
        headers.contentDisposition = .init(.attachment, filename: "\(filename).\(format.rawValue)")
        headers.replaceOrAdd(name: .cacheControl, value: "no-store")
        let json = WireJSON(style: keyStyle)
        let body = Response.Body(asyncStream: { writer in
            do {
                try await writer.write(.buffer(ByteBuffer(string: format == .csv ? CSV.line(header) : "{\"success\":true,\"data\":[")))
                var first = true
                // The next page is read while this one is written out: the database and the encoding overlap.
                var pending: Task<(rows: [Row], cursor: String?), any Error>? = Task { try await nextPage(nil) }
                while let reading = pending {
                    let page = try await reading.value
                    pending = page.rows.isEmpty || page.cursor == nil ? nil : Task { [cursor = page.cursor] in try await nextPage(cursor) }
                    var chunk: [UInt8] = []
                    if format == .csv {
                        var csv = CSV.Writer(columns: header.count)
                        for row in page.rows {
                            csvLine(row, &csv)
                            csv.endLine()
                        }
                        chunk = csv.bytes
                    } else {
                        for row in page.rows {
                            if !first { chunk.append(UInt8(ascii: ",")) }
                            chunk += try json.encode(row)
                            first = false
                        }
                    }
                    if !chunk.isEmpty {
                        do {
                            try await writer.write(.buffer(ByteBuffer(bytes: chunk)))
                        } catch {
                            pending?.cancel()
                            throw error
                        }
                    }
                }
                if format == .json { try await writer.write(.buffer(ByteBuffer(string: "]}"))) }
                try await writer.write(.end)
            } catch {
                try? await writer.write(.error(error))
            }
            await FreedMemory.returnToSystem(app)
        })
        return Response(status: .ok, headers: headers, body: body)
    }
}
