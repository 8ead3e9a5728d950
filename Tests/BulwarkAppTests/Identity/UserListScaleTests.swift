@testable import BulwarkApp
import Fluent
import Foundation
import SQLKit
import NIOConcurrencyHelpers
import Testing
import Vapor
import VaporTesting

/// Issue 9: people lists that stay correct and cheap at a million: keyset paging, indexed search, bounded totals.
@Suite struct UserListScaleTests {
    @Test func pagingByCursorNeitherSkipsNorRepeatsWhilePeopleAreAdded() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            var original: Set<String> = [tenant.admin.email]
            for index in 0..<40 {
                let user = try await Factory.user(app, in: tenant, email: "p\(index)@acme.test", lastName: "Name\(index % 9)")
                original.insert(user.email)
            }
            var added = 0
            let seen = try await walkPages(app, "/api/v1/users", token: tenant.token, field: "email") { _ in
                // People who sort before and after the current page arrive while the list is walked.
                for name in ["Aaron", "Zed"] {
                    try await Factory.user(app, in: tenant, email: "new\(added)@acme.test", lastName: name)
                    added += 1
                }
            }
            #expect(seen.count == Set(seen).count, "no one twice")
            #expect(original.isSubset(of: Set(seen)), "everyone who was there from the start is seen")
            // The same in /api/v4/users, ordered by creation.
            let v4 = try await walkPages(app, "/api/v4/users", token: tenant.token, field: "email") { _ in
                try await Factory.user(app, in: tenant, email: "late\(added)@acme.test")
                added += 1
            }
            #expect(v4.count == Set(v4).count)
            #expect(original.isSubset(of: Set(v4)))
            // A cursor that is not ours is a 400 naming the field.
            let bad = try await app.send(.GET, "/api/v1/users?cursor=not-a-cursor", token: tenant.token)
            expectError(bad, .badRequest, "VALIDATION_ERROR")
            #expect(JSON(bad)["error"]["details"].keys == ["cursor"])
            expectError(try await app.send(.GET, "/api/v1/users?sort=department&cursor=abc", token: tenant.token),
                        .badRequest, "VALIDATION_ERROR")
            // Another tenant's walk sees none of these people.
            let outsider = try await Factory.tenant(app, name: "Outsider")
            let theirs = try await walkPages(app, "/api/v1/users", token: outsider.token, field: "email")
            #expect(theirs == [outsider.admin.email])
        }
    }

    @Test func searchFindsByNameOrEmailThroughTheIndexAndFollowsChanges() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let ada = try await Factory.user(app, in: tenant, email: "ada.l@acme.test", firstName: "Ada", lastName: "Lovelace")
            try await Factory.user(app, in: tenant, email: "grace@acme.test", firstName: "Grace", lastName: "Hopper")
            try await Factory.user(app, in: tenant, email: "odd%_\"name@acme.test", firstName: "Per%cent", lastName: "Quote\"d")
            func emails(_ term: String) async throws -> [String] {
                let query = term.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? term
                let response = try await app.send(.GET, "/api/v1/users?search=\(query)", token: tenant.token)
                #expect(response.status == .ok)
                return JSON(response)["data"].array.compactMap { $0["email"].string }
            }
            #expect(try await emails("lovelace") == ["ada.l@acme.test"], "last name, any case")
            #expect(try await emails("GRACE@") == ["grace@acme.test"], "email")
            #expect(try await emails("ve") == ["ada.l@acme.test"], "a short term still works")
            #expect(try await emails("r%c") == ["odd%_\"name@acme.test"], "wildcards are literal")
            #expect(try await emails("te\"d") == ["odd%_\"name@acme.test"], "quotes are literal")
            #expect(try await emails("nobody-like-this").isEmpty)
            // A renamed person is found by the new name only; a deleted one not at all.
            _ = try await app.send(.PUT, "/api/v1/users/\(ada.id!.wire)", token: tenant.token, json: ["last_name": "Byron"])
            #expect(try await emails("lovelace").isEmpty)
            #expect(try await emails("byron") == ["ada.l@acme.test"])
            #expect(try await app.send(.DELETE, "/api/v1/users/\(ada.id!.wire)", token: tenant.token).status == .ok)
            #expect(try await emails("byron").isEmpty)
            // Another tenant's search never reaches these people.
            let outsider = try await Factory.tenant(app, name: "Outsider")
            let theirs = try await app.send(.GET, "/api/v1/users?search=hopper", token: outsider.token)
            #expect(JSON(theirs)["data"].array.isEmpty)
        }
    }

    @Test func theIndexIsAskedOnlyForTheUncommonPartsOfATerm() {
        let common: Set<String> = ["las", "ast", "st0", "t00", "per", "ers", "rso", "son", "@ac", "acm", "cme", "me.", "e.t", ".te", "tes", "est"]
        #expect(SearchTrigrams.query(for: "Last0099999", common: common) == "\"0099999\"")
        #expect(SearchTrigrams.query(for: "person77@acme.test", common: common) == "\"on77@a\"")
        #expect(SearchTrigrams.query(for: "xLast7", common: common) == "\"xla\" AND \"st7\"")
        #expect(SearchTrigrams.query(for: "zlasz", common: common) == "\"zla\" AND \"asz\"")
        #expect(SearchTrigrams.query(for: "Last", common: common) == "\"last\"", "every trigram common: the whole term")
        #expect(SearchTrigrams.query(for: "ab", common: common) == "\"ab\"")
        #expect(SearchTrigrams.query(for: "O\"Neil", common: []) == "\"o\"\"neil\"")
        #expect(SearchTrigrams.runs(of: "xLast7", common: common) == ["xla", "st7"])
    }

    @Test func searchFindsTheSamePeopleWhateverTrigramsAreCommon() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            for index in 0..<60 {
                try await Factory.user(app, in: tenant, email: "x\(index)@acme.test", firstName: "Common", lastName: "Name\(index)")
            }
            // A NUL cannot reach the index (FTS5 stops reading at it) nor PostgreSQL: a 400 naming the field.
            let nul = try await app.send(.GET, "/api/v1/users?search=ab%00cd", token: tenant.token)
            expectError(nul, .badRequest, "VALIDATION_ERROR")
            #expect(JSON(nul)["error"]["details"].keys == ["search"])
            // A fresh sample of these people (SQLite's index only): their shared trigrams ("nam", "@ac") are common.
            let sqlite = app.db.sql.dialect.name == "sqlite"
            let learnt = sqlite ? try await SearchTrigrams.common(on: app.db, maxAge: 0) : []
            #expect(!sqlite || (learnt.contains("nam") && learnt.contains("@ac")))
            for term in ["Name5", "name59", "Common Name1", "x4@acme", "@acme.test", "Nobody"] {
                let query = term.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? term
                let response = try await app.send(.GET, "/api/v1/users?per_page=100&search=\(query)", token: tenant.token)
                #expect(response.status == .ok)
                let found = Set(JSON(response)["data"].array.compactMap { $0["email"].string })
                let expected = try await User.query(on: app.db).filter(\.$client.$id == tenant.client.id!).all()
                    .filter { person in [person.firstName, person.lastName, person.email].contains { $0.lowercased().contains(term.lowercased()) } }
                    .map(\.email)
                #expect(found == Set(expected), "\(term) with common trigrams \(learnt.sorted().prefix(8))")
            }
        }
    }

    @Test func deepPagesStartAfterAnchorsAndMatchOffsetPages() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            for index in 0..<45 {
                try await Factory.user(app, in: tenant, email: "a\(index)@acme.test", lastName: "Name\(index % 7)")
            }
            let keyset = try #require(UserService.keyset(for: nil))
            func people(of client: Client) -> QueryBuilder<User> {
                User.query(on: app.db).filter(\.$client.$id == client.id!).filter(.sql(unsafeRaw: User.notDeleted))
            }
            func byOffset(_ offset: Int, of client: Client) async throws -> [UUID] {
                let page = people(of: client)
                keyset.apply(to: page, after: nil)
                return try await page.range(offset..<(offset + 7)).all().map { $0.id! }
            }
            func anchored(_ offset: Int, of client: Client) async throws -> [UUID]? {
                guard let start = try await PageAnchors.start(of: offset, in: people(of: client), keyset: keyset, spacing: 10) else { return nil }
                let page = people(of: client)
                keyset.apply(to: page, after: start.after)
                return try await page.range(start.skip..<(start.skip + 7)).all().map { $0.id! }
            }
            // Every page from an anchor is the page at its offset (46 people: anchors at 10, 20, 30 and 40).
            for offset in 0..<46 {
                let expected = try await byOffset(offset, of: tenant.client)
                if offset < 10 {
                    #expect(try await anchored(offset, of: tenant.client) == nil, "no anchor before the first one")
                } else {
                    #expect(try await anchored(offset, of: tenant.client) == expected, "offset \(offset)")
                }
            }
            // An anchor is remembered: someone sorted first arriving moves offset pages by one row, not the anchored
            // page (within maxAge), which stays a run of consecutive people in order.
            let before = try #require(try await anchored(23, of: tenant.client))
            try await Factory.user(app, in: tenant, email: "first@acme.test", lastName: "Aardvark")
            #expect(try await byOffset(23, of: tenant.client) != before)
            #expect(try await anchored(23, of: tenant.client) == before)
            #expect(try await byOffset(24, of: tenant.client) == before)
            // Anchors belong to one list: another client's list (one person) finds none, not this client's.
            let outsider = try await Factory.tenant(app, name: "Outsider")
            #expect(try await anchored(23, of: outsider.client) == nil)
            #expect(try await anchored(5, of: outsider.client) == nil)
        }
    }

    @Test func totalsAreExactUpToTheLimitAndCountedOnceAbove() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            for _ in 0..<12 { try await Factory.user(app, in: tenant) }
            let query = User.query(on: app.db).filter(\.$client.$id == tenant.client.id!)
            let exact = try await ListTotals.total(of: query, exactLimit: 20)
            #expect(exact.count == 13 && !exact.estimated)
            // Above the limit: counted in full the first time, then served from that count (marked as an estimate)
            // while it is fresh, even as people are added.
            let first = try await ListTotals.total(of: query, exactLimit: 5)
            #expect(first.count == 13 && !first.estimated)
            try await Factory.user(app, in: tenant)
            let second = try await ListTotals.total(of: query, exactLimit: 5)
            #expect(second.count == 13 && second.estimated)
            let response = JSON(try await app.send(.GET, "/api/v1/users?per_page=5", token: tenant.token))
            #expect(response["pagination"]["total"].int == 14)
            #expect(response["pagination"]["total_estimated"].exists == false, "exact below the server's limit")
        }
    }

    /// Requests that arrive together for a list nobody has counted share one full count (and its answer); a failed
    /// count is not kept, so the next request counts again.
    @Test func aBurstOfFirstRequestsCountsOnce() async throws {
        let calls = NIOLockedValueBox(0)
        let key = "burst:\(UUID())"
        try await withThrowingTaskGroup(of: ListTotals.Total.self) { group in
            for _ in 0..<16 {
                group.addTask {
                    try await ListTotals.total(key: key, exactLimit: 5, bounded: { 6 }, full: {
                        calls.withLockedValue { $0 += 1 }
                        try await Task.sleep(for: .milliseconds(200))
                        return 1_234
                    })
                }
            }
            for try await total in group { #expect(total.count == 1_234 && !total.estimated) }
        }
        #expect(calls.withLockedValue { $0 } == 1)

        struct Broken: Error {}
        let failing = "failing:\(UUID())"
        await #expect(throws: Broken.self) {
            try await ListTotals.total(key: failing, exactLimit: 5, bounded: { 6 }, full: { throw Broken() })
        }
        let retried = try await ListTotals.total(key: failing, exactLimit: 5, bounded: { 6 }, full: { 99 })
        #expect(retried.count == 99)
    }

    /// Once a list's count is stale, requests keep the old count (an estimate) while one refresh runs, without walking
    /// the list again each; a list that has shrunk below the limit is exact again after that refresh.
    @Test func aStaleLargeCountIsServedWhileOneRefreshRuns() async throws {
        let list = SizedList()
        let (walks, counts, size) = (list.walks, list.counts, list.size)
        func total(at now: Date) async throws -> ListTotals.Total {
            try await list.total(at: now) { count, size in
                // The first count is quick (its cost keeps the refresh age at maxAge); the refresh takes a while.
                if count > 1 { try await Task.sleep(for: .milliseconds(100)) }
                return size
            }
        }
        #expect(try await total(at: Date()).count == 100)
        #expect(walks.withLockedValue { $0 } == 1 && counts.withLockedValue { $0 } == 1)
        size.withLockedValue { $0 = 3 }
        let later = Date().addingTimeInterval(ListTotals.maxAge + 1)
        for _ in 0..<16 {
            let stale = try await total(at: later)
            #expect(stale.count == 100 && stale.estimated)
        }
        #expect(walks.withLockedValue { $0 } == 1, "no request walked the list again")
        // Once the refresh is in, the shrunken list is walked and exact.
        var fresh = try await total(at: later)
        for _ in 0..<50 where fresh.estimated {
            try await Task.sleep(for: .milliseconds(20))
            fresh = try await total(at: later)
        }
        #expect(fresh.count == 3 && !fresh.estimated)
        #expect(counts.withLockedValue { $0 } == 2, "one refresh for the sixteen")
    }

    /// A filter no index serves walks the whole list to count even a few rows: once such a walk is slow, its count is
    /// kept as an estimate (refreshed in the background) instead of walking again on every page; a quick walk never is,
    /// and a list found quick again by its refresh is walked and exact again.
    @Test func aSlowSmallCountIsKeptAsAnEstimateUntilItIsQuickAgain() async throws {
        let key = "slow:\(UUID())"
        // A walk of 0.3 s is refreshed every 150 s (`BackgroundBudget`) and trusted for 750.
        let (size, delay, walks) = (NIOLockedValueBox(3), NIOLockedValueBox(300), NIOLockedValueBox(0))
        @Sendable func count() async throws -> Int {
            try await Task.sleep(for: .milliseconds(delay.withLockedValue { $0 }))
            return size.withLockedValue { $0 }
        }
        func total(at now: Date) async throws -> ListTotals.Total {
            try await ListTotals.total(key: key, exactLimit: 5, slowWalk: 0.05, now: now, bounded: {
                walks.withLockedValue { $0 += 1 }
                return try await count()
            }, full: count)
        }
        let start = Date()
        let first = try await total(at: start)
        #expect(first.count == 3 && !first.estimated, "one slow walk may only have waited: it is not kept")
        size.withLockedValue { $0 = 4 }
        let second = try await total(at: start)
        #expect(second.count == 4 && !second.estimated, "the second slow walk still answers exactly")
        size.withLockedValue { $0 = 5 }
        let kept = try await total(at: start)
        #expect(kept.count == 4 && kept.estimated, "after two slow walks in a row the count is kept, and said to be an estimate")
        #expect(walks.withLockedValue { $0 } == 2)
        size.withLockedValue { $0 = 4 }
        // Once stale, one refresh counts again in the background; it is still slow, so the fresh count is kept too.
        // (Well past the longest refresh age: the cache times its entries by the real clock, which moved on meanwhile.)
        let later = start.addingTimeInterval(ListTotals.longestRefreshAge + 30)
        var refreshed = try await total(at: later)
        for _ in 0..<100 where refreshed.count != 4 {
            try await Task.sleep(for: .milliseconds(20))
            refreshed = try await total(at: later)
        }
        #expect(refreshed.count == 4 && refreshed.estimated)
        #expect(walks.withLockedValue { $0 } == 2, "no page walked the list meanwhile")
        // The list becomes quick to count: the next refresh finds it so, and from then on every page walks and is exact.
        delay.withLockedValue { $0 = 0 }
        size.withLockedValue { $0 = 2 }
        var exact = try await total(at: later)
        for _ in 0..<100 where exact.estimated {
            try await Task.sleep(for: .milliseconds(20))
            exact = try await total(at: later)
        }
        #expect(exact.count == 2 && !exact.estimated)
        size.withLockedValue { $0 = 1 }
        #expect(try await total(at: later).count == 1, "a quick walk is never kept")

        // A slow walk, a quick one, a slow one: never two slow in a row, so never kept. (A threshold of 250 ms: the
        // quick walk, which does not sleep, once took over 50 ms on a machine busy with the other suites.)
        let mixedKey = "slow-mixed:\(UUID())"
        for (index, milliseconds) in [400, 0, 400].enumerated() {
            delay.withLockedValue { $0 = milliseconds }
            size.withLockedValue { $0 = index }
            let mixed = try await ListTotals.total(key: mixedKey, exactLimit: 5, slowWalk: 0.25, bounded: count, full: count)
            #expect(mixed.count == index && !mixed.estimated)
        }

        // With the setting off (tests, and every list until `configure` sets it), a slow walk is exact every time.
        let offKey = "slow-off:\(UUID())"
        size.withLockedValue { $0 = 3 }
        delay.withLockedValue { $0 = 60 }
        for _ in 0..<2 { _ = try await ListTotals.total(key: offKey, exactLimit: 5, slowWalk: .infinity, bounded: count, full: count) }
        size.withLockedValue { $0 = 4 }
        let unkept = try await ListTotals.total(key: offKey, exactLimit: 5, slowWalk: .infinity, bounded: count, full: count)
        #expect(unkept.count == 4 && !unkept.estimated)
    }

    /// A count that takes long is refreshed less often (`BackgroundBudget.costFactor` times its cost): background
    /// counting stays a small share of a core.
    @Test func anExpensiveCountIsRefreshedLessOften() async throws {
        let key = "expensive:\(UUID())"
        let counts = NIOLockedValueBox(0)
        func total(at now: Date) async throws -> ListTotals.Total {
            try await ListTotals.total(key: key, exactLimit: 5, now: now, bounded: { 6 }, full: {
                counts.withLockedValue { $0 += 1 }
                try await Task.sleep(for: .milliseconds(100))
                return 100
            })
        }
        _ = try await total(at: Date())
        let refreshAge = 0.1 * BackgroundBudget.costFactor
        #expect(refreshAge > ListTotals.maxAge + 1, "the count's cost sets the age here")
        let early = try await total(at: Date().addingTimeInterval(ListTotals.maxAge + 1))
        #expect(early.count == 100 && early.estimated)
        try await Task.sleep(for: .milliseconds(300))
        #expect(counts.withLockedValue { $0 } == 1, "not refreshed after maxAge")
        // Much later (however long a loaded machine stretched the count), it is refreshed.
        _ = try await total(at: Date().addingTimeInterval(86_400))
        for _ in 0..<100 where counts.withLockedValue({ $0 }) < 2 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(counts.withLockedValue { $0 } == 2, "refreshed once its cost's age has passed")
    }

    /// A count whose refreshes fail is trusted only up to `maxStaleAge`: then the list is walked again, and a list
    /// that has shrunk is exact.
    @Test func aCountThatCannotBeRefreshedIsNotTrustedForever() async throws {
        struct Broken: Error {}
        let list = SizedList()
        let (walks, size) = (list.walks, list.size)
        func total(at now: Date) async throws -> ListTotals.Total {
            try await list.total(at: now) { _, size in
                if size < 100 { throw Broken() }
                return size
            }
        }
        #expect(try await total(at: Date()).count == 100)
        size.withLockedValue { $0 = 3 }
        let stale = try await total(at: Date().addingTimeInterval(ListTotals.maxAge + 1))
        #expect(stale.count == 100 && stale.estimated && walks.withLockedValue { $0 } == 1)
        let tooOld = try await total(at: Date().addingTimeInterval(ListTotals.maxStaleAge + 1))
        #expect(tooOld.count == 3 && !tooOld.estimated)
        #expect(walks.withLockedValue { $0 } == 2)
    }
}

/// A list for `ListTotals` of a size the test sets (100 at first; exact limit 5), counting its bounded walks and its
/// full counts; `full` is given the number of this count (1 for the first) and the size.
private struct SizedList {
    let key = "sized:\(UUID())"
    let size = NIOLockedValueBox(100)
    let walks = NIOLockedValueBox(0)
    let counts = NIOLockedValueBox(0)

    func total(at now: Date, full: @escaping @Sendable (_ count: Int, _ size: Int) async throws -> Int) async throws -> ListTotals.Total {
        let (size, walks, counts) = (self.size, self.walks, self.counts)
        return try await ListTotals.total(key: key, exactLimit: 5, now: now, bounded: {
            walks.withLockedValue { $0 += 1 }
            return min(size.withLockedValue { $0 }, 6)
        }, full: {
            try await full(counts.withLockedValue { $0 += 1; return $0 }, size.withLockedValue { $0 })
        })
    }
}

/// Issue 9: the importer reads a file as it arrives and writes it in batches, with the same per-row answers.
@Suite struct StreamingImportTests {
    /// Four batches: on PostgreSQL two are written at once, so a row may repeat one of a batch still being written
    /// (the batches are then waited for) or of one written long ago (the imported emails' hashes).
    @Test func aLargeFileIsImportedInBatchesWithEveryRowAccountedFor() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            var lines = ["first_name,last_name,email,position,department,manager_email"]
            for index in 0..<6_000 {
                let manager = index == 100 ? "p3500@big.test" : (index == 200 ? "nobody@big.test" : "")
                // Row 4502 (third batch) repeats row 3002 (second batch), which may still be being written.
                let email = index == 4_500 ? "p3000@big.test" : "p\(index)@big.test"
                lines.append("First\(index),Last\(index),\(email),,Dept\(index % 7),\(manager)")
            }
            lines.append("Again,Twice,p10@big.test,,,")                // row 6002: twice in the file, batches apart
            lines.append("Late,Repeat,p5999@big.test,,,")              // row 6003: a row of a batch still being written
            lines.append("Admin,Clash,\(tenant.admin.email),,,")       // row 6004: already taken
            for index in 0..<1_100 { lines.append("Bad,Row\(index),not-an-email-\(index),,,") }
            let csv = lines.joined(separator: "\n") + "\n"
            let response = try await app.send(.POST, "/api/v1/users/import", token: tenant.token, body: csv,
                                              contentType: HTTPMediaType(type: "text", subType: "csv"))
            #expect(response.status == .ok, "body: \(response.body.string.prefix(300))")
            let data = JSON(response)["data"]
            #expect(data["total_rows"].int == 7_103)
            #expect(data["imported"].int == 5_998)
            #expect(data["failed"].int == 1_105)
            #expect(data["errors"].array.count == UserImportService.maxReportedErrors)
            #expect(data["errors_truncated"].bool == true)
            let reported = data["errors"].array
            #expect(reported.first?["row"].int == 202, "rows in order; the manager nobody has is reported")
            #expect(reported.first?["errors"]["manager_email"].exists == true)
            for row in [4_502, 6_002, 6_003] {
                #expect(reported.contains { $0["row"].int == row && $0["errors"]["email"][0].string?.contains("more than once") == true },
                        "row \(row)")
            }
            #expect(reported.contains { $0["row"].int == 6_004 && $0["errors"]["email"][0].string?.contains("taken") == true })
            #expect(try await User.query(on: app.db).filter(\.$email == "p5999@big.test").first()?.lastName == "Last5999")
            #expect(try await User.query(on: app.db).filter(\.$email == "p3000@big.test").first()?.lastName == "Last3000",
                    "the first of the two rows is the one kept")
            // A manager who comes later in the file is linked; the row with an unknown manager is not in.
            let report = try #require(try await User.query(on: app.db).filter(\.$email == "p100@big.test").first())
            let manager = try #require(try await User.query(on: app.db).filter(\.$email == "p3500@big.test").first())
            #expect(report.$manager.id == manager.id)
            #expect(try await User.query(on: app.db).filter(\.$email == "p200@big.test").count() == 0)
            #expect(try await User.query(on: app.db).filter(\.$client.$id == tenant.client.id!).count() == 5_999)
            // Imported people are searchable at once.
            let found = JSON(try await app.send(.GET, "/api/v1/users?search=last5999", token: tenant.token))
            #expect(found["data"].array.compactMap { $0["email"].string } == ["p5999@big.test"])
            // Another tenant's import cannot take these emails, and lands in its own client only.
            let other = try await Factory.tenant(app, name: "Other")
            let clash = JSON(try await app.send(.POST, "/api/v1/users/import", token: other.token,
                                                body: "first_name,last_name,email\nX,Y,p1@big.test\nNew,One,new1@other.test\n",
                                                contentType: HTTPMediaType(type: "text", subType: "csv")))
            #expect(clash["data"]["imported"].int == 1)
            #expect(try await User.query(on: app.db).filter(\.$email == "p1@big.test").first()?.$client.id == tenant.client.id)
        }
    }

    /// A batch the database refuses (here a trigger) ends the import with an error; every batch written before it or
    /// beside it is counted, has its managers linked and is in the audit entry, marked interrupted.
    @Test func aBatchThatFailsLeavesEveryWrittenBatchCountedAndAudited() async throws {
        try await withBulwark { app in
            let postgres = TestDatabase.postgresURL != nil
            let create = postgres ? [
                """
                CREATE OR REPLACE FUNCTION import_refuses() RETURNS trigger AS $$ BEGIN
                  IF NEW.email = 'refused@big.test' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql
                """,
                "CREATE TRIGGER import_refuses BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION import_refuses()",
            ] : ["CREATE TRIGGER import_refuses BEFORE INSERT ON users WHEN NEW.email = 'refused@big.test' BEGIN SELECT RAISE(ABORT, 'refused'); END"]
            let drop = postgres ? ["DROP TRIGGER IF EXISTS import_refuses ON users", "DROP FUNCTION IF EXISTS import_refuses()"]
                                : ["DROP TRIGGER IF EXISTS import_refuses"]
            for statement in create { try await app.db.sql.raw("\(unsafeRaw: statement)").run() }
            do {
                let tenant = try await Factory.tenant(app)
                var lines = ["first_name,last_name,email,position,department,manager_email"]
                // Four batches; the second holds the refused row. On PostgreSQL the third is being written beside it.
                for index in 0..<7_000 {
                    let email = index == 3_000 ? "refused@big.test" : "p\(index)@big.test"
                    lines.append("First\(index),Last\(index),\(email),,,\(index == 4_100 ? "p10@big.test" : "")")
                }
                let response = try await app.send(.POST, "/api/v1/users/import", token: tenant.token,
                                                  body: lines.joined(separator: "\n") + "\n",
                                                  contentType: HTTPMediaType(type: "text", subType: "csv"))
                #expect(response.status == .internalServerError, "body: \(response.body.string.prefix(300))")
                let written = app.importWriters == 2 ? 4_000 : 2_000
                let people = try await User.query(on: app.db).filter(\.$client.$id == tenant.client.id!).count()
                #expect(people == written + 1, "the batches written, and the admin")
                let entry = try #require(try await AuditEntry.query(on: app.db).filter(\.$action == "user.imported").first())
                let details = try JSONDecoder().decode([String: JSONValue].self, from: Data((entry.details ?? "").utf8))
                #expect(details["imported"] == .number(Double(written)))
                #expect(details["interrupted"] == .bool(true))
                if written == 4_000 {
                    let report = try #require(try await User.query(on: app.db).filter(\.$email == "p4100@big.test").first())
                    let manager = try #require(try await User.query(on: app.db).filter(\.$email == "p10@big.test").first())
                    #expect(report.$manager.id == manager.id, "the batch written beside the refused one is linked")
                }
            } catch {
                for statement in drop { try? await app.db.sql.raw("\(unsafeRaw: statement)").run() }
                throw error
            }
            for statement in drop { try await app.db.sql.raw("\(unsafeRaw: statement)").run() }
        }
    }

    @Test func aHostileFileIsRefusedWithoutHoldingItInMemory() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let openQuote = "first_name,last_name,email\nA,B,a@hostile.test\n\"" + String(repeating: "x", count: 70_000)
            let response = try await app.send(.POST, "/api/v1/users/import", token: tenant.token, body: openQuote,
                                              contentType: HTTPMediaType(type: "text", subType: "csv"))
            expectError(response, .badRequest, "VALIDATION_ERROR")
            #expect(JSON(response)["error"]["details"]["file"][0].string?.contains("longer than") == true)
            let commas = "first_name,last_name,email\n" + String(repeating: ",", count: 1_000)
            let wide = try await app.send(.POST, "/api/v1/users/import", token: tenant.token, body: commas,
                                          contentType: HTTPMediaType(type: "text", subType: "csv"))
            expectError(wide, .badRequest, "VALIDATION_ERROR")
            #expect(try await User.query(on: app.db).filter(\.$client.$id == tenant.client.id!).count() == 1, "nothing half-imported")
        }
    }
}
