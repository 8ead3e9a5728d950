import Vapor

/// Success envelope: `{"success": true, "data": ..., "pagination": ...}`.
struct Envelope<T: Encodable>: Encodable {
    let success = true
    let data: T
    let pagination: PaginationMeta?
}

/// Envelope for actions that answer with a message and no data (e.g. logout).
struct MessageEnvelope: Encodable {
    let success = true
    let message: String
}

extension Request {
    var keyStyle: KeyStyle { routeFamily.keyStyle }

    /// Encodes `data` in the envelope with the key style of this request's route family.
    func envelope<T: Encodable>(_ data: T, status: HTTPStatus = .ok, pagination: PaginationMeta? = nil) throws -> Response {
        try json(Envelope(data: data, pagination: pagination), status: status)
    }

    func envelope<T: Encodable>(page: PageResult<T>) throws -> Response {
        try envelope(page.items, pagination: page.meta)
    }

    func message(_ text: String, status: HTTPStatus = .ok) throws -> Response {
        try json(MessageEnvelope(message: text), status: status)
    }

    func json<T: Encodable>(_ value: T, status: HTTPStatus) throws -> Response {
        let bytes = try WireJSON(style: keyStyle).encode(value)
        var headers = HTTPHeaders()
        headers.contentType = .json
        return Response(status: status, headers: headers, body: .init(buffer: ByteBuffer(bytes: bytes)))
    }

    /// Decodes the JSON body with this family's key style. Unparseable JSON answers 400; a field of the wrong type is
    /// a validation error of that field, named as it is on the wire.
    func decodeBody<T: Decodable>(_ type: T.Type = T.self) throws -> T {
        guard let buffer = body.data, buffer.readableBytes > 0 else {
            throw APIError.badRequest("A JSON body is required.")
        }
        return try BodyDecoder(style: keyStyle).decode(T.self, from: Data(buffer.readableBytesView))
    }
}
