@testable import BulwarkApp
import Testing
import Vapor
import VaporTesting

@Suite struct ConventionsTests {
    @Test func unknownRouteAnswers404InTheEnvelope() async throws {
        try await withBulwark { app in
            let response = try await app.send(.GET, "/api/v1/does-not-exist")
            expectError(response, .notFound, "NOT_FOUND")
            #expect(JSON(response)["error"].keys == ["code", "message", "details"])
        }
    }

    @Test func malformedBodyAnswers400() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let response = try await app.send(.POST, "/api/v1/users", token: tenant.token, body: "{\"email\":", contentType: .json)
            expectError(response, .badRequest, "BAD_REQUEST")
        }
    }

    @Test func aFieldOfTheWrongTypeIsAValidationErrorOfThatFieldByItsWireName() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app, adminRole: .mspAdmin)
            // /api/v1 answers 400 (seed 000 has no 422), every wrong field at once, named as on the wire.
            let v1 = try await app.send(.POST, "/api/v1/users", token: tenant.token,
                                        json: ["first_name": 12, "last_name": ["x"], "email": "a@b.test", "manager_id": true])
            expectError(v1, .badRequest, "VALIDATION_ERROR")
            #expect(JSON(v1)["error"]["details"].keys == ["first_name", "last_name", "manager_id"])
            #expect(JSON(v1)["error"]["details"]["first_name"][0].string == "The first_name must be a string.")
            // /api/v3 answers 422, as seed 002 documents; a number too large for its field is that field's error too.
            let v3 = try await app.send(.POST, "/api/v3/companies/\(tenant.companyID)/clients", token: tenant.token,
                                        json: ["name": 5, "employee_count": 1e30])
            expectError(v3, .unprocessableEntity, "VALIDATION_ERROR")
            #expect(JSON(v3)["error"]["details"].keys == ["name", "employee_count"])
            // The tabletop family keeps camelCase names.
            let ttx = try await app.send(.POST, "/api/auth/register", json: ["email": "x@y.test", "password": "password123",
                                                                            "firstName": 1, "lastName": "L"])
            expectError(ttx, .unprocessableEntity, "VALIDATION_ERROR")
            #expect(JSON(ttx)["error"]["details"].keys == ["firstName"])
            // A body that is not JSON at all, or not an object, stays a plain bad request.
            expectError(try await app.send(.POST, "/api/v1/users", token: tenant.token, body: "[1,2]", contentType: .json),
                        .badRequest, "BAD_REQUEST")
        }
    }

    @Test func validationErrorsAndConflictsAnswer400OnlyInTheAwarenessFamily() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app, adminRole: .mspAdmin)
            let missing = try await app.send(.POST, "/api/v1/users", token: tenant.token, json: [:])
            expectError(missing, .badRequest, "VALIDATION_ERROR")
            #expect(JSON(missing)["error"]["details"].keys.isSuperset(of: ["first_name", "last_name", "email"]))
            let body: [String: Any] = ["first_name": "A", "last_name": "B", "email": "dup@acme.test"]
            #expect(try await app.send(.POST, "/api/v1/users", token: tenant.token, json: body).status == .created)
            expectError(try await app.send(.POST, "/api/v1/users", token: tenant.token, json: body), .badRequest, "VALIDATION_ERROR")
            let v3 = try await app.send(.POST, "/api/v3/companies/\(tenant.companyID)/clients", token: tenant.token, json: [:])
            expectError(v3, .unprocessableEntity, "VALIDATION_ERROR")
            let taken = try await app.send(.POST, "/api/auth/register", json: ["email": "dup@acme.test", "password": "password123",
                                                                              "firstName": "A", "lastName": "B"])
            expectError(taken, .conflict, "CONFLICT")
        }
    }

    @Test func everyApiResponseCarriesRateLimitHeaders() async throws {
        try await withBulwark { app in
            let response = try await app.send(.GET, "/api/v1/users")
            #expect(response.headers.first(name: "X-RateLimit-Limit") == "100000")
            #expect(response.headers.first(name: "X-RateLimit-Remaining") == "99999")
            #expect(Int(response.headers.first(name: "X-RateLimit-Reset") ?? "") != nil)
        }
    }

    @Test func writesPastTheLimitAnswer429WithRetryAfter() async throws {
        // A manual clock: a real one may cross a window boundary between the requests of a slow run.
        try await withBulwark(clock: ManualClock(), adjust: { $0.rateLimits[.write] = RateLimitRule(limit: 2, window: 60) }) { app in
            let tenant = try await Factory.tenant(app)
            for _ in 0..<2 {
                let response = try await app.send(.POST, "/api/v1/users", token: tenant.token, json: [:])
                #expect(response.status == .badRequest)
            }
            let limited = try await app.send(.POST, "/api/v1/users", token: tenant.token, json: [:])
            expectError(limited, .tooManyRequests, "RATE_LIMITED")
            #expect(Int(limited.headers.first(name: "Retry-After") ?? "") ?? 0 >= 1)
            #expect(limited.headers.first(name: "X-RateLimit-Remaining") == "0")
            // Reads count against their own category.
            let read = try await app.send(.GET, "/api/v1/users", token: tenant.token)
            #expect(read.status == .ok)
        }
    }

    @Test func rateLimitCategoriesFollowTheSeeds() {
        #expect(RateCategory.of(method: .GET, path: "/api/v1/users") == .read)
        #expect(RateCategory.of(method: .DELETE, path: "/api/v1/users/x") == .write)
        #expect(RateCategory.of(method: .GET, path: "/api/v1/export/audit-logs") == .export)
        #expect(RateCategory.of(method: .GET, path: "/api/v3/companies") == .general)
        #expect(RateCategory.of(method: .GET, path: "/api/v3/auth/user") == .auth)
        #expect(RateCategory.of(method: .POST, path: "/api/auth/login") == .auth)
        #expect(RateCategory.of(method: .GET, path: "/health") == nil)
        #expect(RateCategory.seedDefaults[.write] == RateLimitRule(limit: 5, window: 60))
        #expect(RateCategory.seedDefaults[.general] == RateLimitRule(limit: 1000, window: 3600))
        #expect(RateLimitRule("20/3600") == RateLimitRule(limit: 20, window: 3600))
        #expect(RateLimitRule("nonsense") == nil)
    }

    @Test func paginationValidatesAndCapsPerPage() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let capped = try await app.send(.GET, "/api/v1/users?per_page=500", token: tenant.token)
            #expect(JSON(capped)["pagination"]["per_page"].int == 100)
            let invalid = try await app.send(.GET, "/api/v1/users?page=0&per_page=abc", token: tenant.token)
            expectError(invalid, .badRequest, "VALIDATION_ERROR")
            #expect(JSON(invalid)["error"]["details"].keys == ["page", "per_page"])
        }
    }

    @Test func healthReadyAndMetrics() async throws {
        try await withBulwark { app in
            #expect(JSON(try await app.send(.GET, "/health"))["data"]["status"].string == "ok")
            #expect(JSON(try await app.send(.GET, "/ready"))["data"]["status"].string == "ready")
            let metrics = try await app.send(.GET, "/metrics")
            #expect(metrics.status == .ok)
            #expect(metrics.body.string.contains("http_requests_total"))
        }
    }
}

@Suite struct CSVTests {
    @Test func parsesQuotedFieldsAndLineEnds() {
        let rows = CSV.parse("a,b\r\n\"x, y\",\"say \"\"hi\"\"\"\nlast,\n\n")
        #expect(rows == [["a", "b"], ["x, y", "say \"hi\""], ["last", ""]])
    }

    @Test func neutralisesFormulas() {
        #expect(CSV.line(["=SUM(A1)"]) == "'=SUM(A1)\r\n")
        #expect(CSV.line(["+1"]) == "'+1\r\n")
        #expect(CSV.line(["@cmd"]) == "'@cmd\r\n")
        #expect(CSV.line(["a,b"]) == "\"a,b\"\r\n")
        #expect(CSV.line(["=1,\"2\"", "é\nx", ""]) == "\"'=1,\"\"2\"\"\",\"é\nx\",\r\n")
        #expect(CSV.line(["plain", "-2"]) == "plain,'-2\r\n")
    }

    /// The one decimal writer behind JSON numbers, CSV cells and timestamps writes what `String` writes.
    @Test func decimalsAreWhatTheirTextIs() {
        for value in [0, 7, -7, 10, 1_234_567, Int.max, Int.min] {
            var bytes: [UInt8] = [UInt8(ascii: "x")]
            bytes.appendDecimal(value)
            #expect(String(decoding: bytes, as: UTF8.self) == "x" + String(value))
        }
        var wide: [UInt8] = []
        wide.appendDecimal(UInt64.max)
        wide.appendDecimal(Int32(5), minimumDigits: 4)
        wide.appendDecimal(Int32(12_345), minimumDigits: 2)
        #expect(String(decoding: wide, as: UTF8.self) == String(UInt64.max) + "0005" + "12345")
    }

    /// Typed cells write what their text would: ids lowercase, times as `ISO8601.string`, numbers in decimal (a negative
    /// one neutralised like any text opening with a minus), nil as an empty cell.
    @Test func typedCellsWriteWhatTheirTextWould() {
        let id = UUID()
        let date = Date(timeIntervalSince1970: 1_800_000_000.5)
        var writer = CSV.Writer()
        writer.id(id); writer.time(date); writer.number(0); writer.number(1_234_567); writer.number(-2); writer.number(Int.min)
        writer.id(nil); writer.time(nil); writer.number(nil); writer.text(nil); writer.text("a,b")
        writer.endLine()
        writer.number(7)
        writer.endLine()
        let expected = CSV.line([id.uuidString.lowercased(), ISO8601DateFormatter().string(from: date), "0", "1234567", "-2",
                                 String(Int.min), "", "", "", "", "a,b"]) + CSV.line(["7"])
        #expect(String(decoding: writer.bytes, as: UTF8.self) == expected)
        #expect(id.lowercasedString == id.uuidString.lowercased())
    }
}

@Suite struct TOTPTests {
    /// RFC 6238 appendix B vectors (SHA-1, secret "12345678901234567890"), last six digits.
    @Test func matchesRFC6238Vectors() {
        let secret = Base32.encode(Array("12345678901234567890".utf8))
        #expect(TOTP.code(secret: secret, at: Date(timeIntervalSince1970: 59)) == "287082")
        #expect(TOTP.code(secret: secret, at: Date(timeIntervalSince1970: 1_111_111_109)) == "081804")
        #expect(TOTP.code(secret: secret, at: Date(timeIntervalSince1970: 2_000_000_000)) == "279037")
    }

    @Test func acceptsOneStepOfDriftOnly() {
        let secret = TOTP.makeSecret()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let code = TOTP.code(secret: secret, at: now)!
        #expect(TOTP.verify(code: code, secret: secret, at: now.addingTimeInterval(30)))
        #expect(!TOTP.verify(code: code, secret: secret, at: now.addingTimeInterval(95)))
        #expect(Base32.decode(Base32.encode([1, 2, 3, 250])) == [1, 2, 3, 250])
    }
}
