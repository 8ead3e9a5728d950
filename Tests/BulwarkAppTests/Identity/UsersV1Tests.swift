@testable import BulwarkApp
import Fluent
import Testing
import Vapor
import VaporTesting

@Suite struct UsersV1Tests {
    @Test func listPagesFiltersAndSorts() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let boss = try await Factory.user(app, in: tenant, role: .manager, firstName: "Bea", lastName: "Boss", department: "Sales")
            for index in 0..<20 {
                let user = try await Factory.user(app, in: tenant, email: "p\(index)@acme.test", firstName: "P\(index)",
                                                  lastName: String(format: "L%02d", index), department: index % 2 == 0 ? "Sales" : "IT")
                if index < 3 { user.$manager.id = boss.id; try await user.save(on: app.db) }
            }
            let page2 = JSON(try await app.send(.GET, "/api/v1/users?page=2&per_page=5", token: tenant.token))
            #expect(page2["pagination"]["total"].int == 22)
            #expect(page2["pagination"]["last_page"].int == 5)
            #expect(page2["pagination"]["current_page"].int == 2)
            #expect(page2["data"].array.count == 5)

            let sales = JSON(try await app.send(.GET, "/api/v1/users?department=Sales&per_page=100", token: tenant.token))
            #expect(sales["data"].array.count == 11)
            let search = JSON(try await app.send(.GET, "/api/v1/users?search=P1", token: tenant.token))
            #expect(Set(search["data"].array.compactMap { $0["first_name"].string }) == Set(["P1"] + (10...19).map { "P\($0)" }))
            let reports = JSON(try await app.send(.GET, "/api/v1/users?manager_id=\(boss.id!)", token: tenant.token))
            #expect(reports["data"].array.count == 3)
            let managers = JSON(try await app.send(.GET, "/api/v1/users?role=manager", token: tenant.token))
            #expect(managers["data"].array.map { $0["email"].string } == [boss.email])
            let sorted = JSON(try await app.send(.GET, "/api/v1/users?sort=-last_name&per_page=1", token: tenant.token))
            #expect(sorted["data"][0]["last_name"].string == "Person")
            let ascending = JSON(try await app.send(.GET, "/api/v1/users?sort=last_name&per_page=2", token: tenant.token))
            #expect(ascending["data"].array.map { $0["last_name"].string } == ["Boss", "L00"])
        }
    }

    @Test func listRejectsUnknownFilterValues() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let response = try await app.send(.GET, "/api/v1/users?sort=password_hash&status=gone&manager_id=x", token: tenant.token)
            expectError(response, .badRequest, "VALIDATION_ERROR")
            #expect(JSON(response)["error"]["details"].keys == ["sort", "status", "manager_id"])
        }
    }

    @Test func listNeedsAuthAndPermission() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            expectError(try await app.send(.GET, "/api/v1/users"), .unauthorized, "UNAUTHORIZED")
            let learner = try await Factory.user(app, in: tenant)
            expectError(try await app.send(.GET, "/api/v1/users", token: try await Factory.token(app, for: learner)), .forbidden, "FORBIDDEN")
        }
    }

    @Test func listShowsOnlyTheCallersClient() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let other = try await Factory.tenant(app, name: "Other")
            try await Factory.user(app, in: other, email: "secret@other.test")
            let list = JSON(try await app.send(.GET, "/api/v1/users?per_page=100", token: tenant.token))
            #expect(!list["data"].array.contains { $0["email"].string == "secret@other.test" })
        }
    }

    @Test func createReturns201AndWritesAnAuditEntry() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let manager = try await Factory.user(app, in: tenant, role: .manager)
            let response = try await app.send(.POST, "/api/v1/users", token: tenant.token, json: [
                "first_name": "Nia", "last_name": "New", "email": "NIA@acme.test", "position": "Analyst",
                "department": "Finance", "manager_id": manager.id!.uuidString, "locale": "en-GB",
            ])
            #expect(response.status == .created)
            let data = JSON(response)["data"]
            #expect(data["email"].string == "nia@acme.test")
            #expect(data["manager_id"].string == manager.id!.wire)
            #expect(data["client_id"].string == tenant.clientID)
            #expect(data["status"].string == "active")
            #expect(data["role"].string == "company_user")
            let entry = try await AuditEntry.query(on: app.db).filter(\.$action == "user.created").first()
            #expect(entry?.targetID == data["id"].string)
            #expect(entry?.actorID == tenant.admin.id)
        }
    }

    @Test func createListsEveryInvalidFieldAtOnce() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let response = try await app.send(.POST, "/api/v1/users", token: tenant.token, json: [
                "email": "not-an-email", "role": "emperor", "status": "zombie", "manager_id": UUID().uuidString, "password": "short",
            ])
            expectError(response, .badRequest, "VALIDATION_ERROR")
            #expect(JSON(response)["error"]["details"].keys == ["first_name", "last_name", "email", "role", "status", "manager_id", "password"])
        }
    }

    @Test func createRejectsDuplicateEmailCaseInsensitively() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            try await Factory.user(app, in: tenant, email: "dup@acme.test")
            let response = try await app.send(.POST, "/api/v1/users", token: tenant.token, json: [
                "first_name": "D", "last_name": "U", "email": "DUP@acme.test",
            ])
            expectError(response, .badRequest, "VALIDATION_ERROR")
            #expect(JSON(response)["error"]["details"]["email"].exists)
        }
    }

    @Test func createCannotGrantARoleAboveTheCaller() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let manager = try await Factory.user(app, in: tenant, role: .manager)
            let managerToken = try await Factory.token(app, for: manager)
            let response = try await app.send(.POST, "/api/v1/users", token: managerToken, json: [
                "first_name": "A", "last_name": "B", "email": "ab@acme.test",
            ])
            expectError(response, .forbidden, "FORBIDDEN")
        }
    }

    @Test func showUpdateAndDeleteAnotherTenantsUserAnswer404() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let user = try await Factory.user(app, in: tenant)
            try await expectOtherTenantGets404(app, .GET, "/api/v1/users/\(user.id!)")
            try await expectOtherTenantGets404(app, .PUT, "/api/v1/users/\(user.id!)", json: ["first_name": "Hacked"])
            try await expectOtherTenantGets404(app, .DELETE, "/api/v1/users/\(user.id!)")
            let unchanged = try await User.find(user.id, on: app.db)
            #expect(unchanged?.firstName == "Test")
            #expect(unchanged?.status == "active")
            expectError(try await app.send(.GET, "/api/v1/users/not-a-uuid", token: tenant.token), .notFound, "NOT_FOUND")
        }
    }

    @Test func showAndUpdate() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let user = try await Factory.user(app, in: tenant)
            let shown = JSON(try await app.send(.GET, "/api/v1/users/\(user.id!)", token: tenant.token))
            #expect(shown["data"]["email"].string == user.email)
            let updated = try await app.send(.PUT, "/api/v1/users/\(user.id!)", token: tenant.token, json: [
                "department": "Security", "role": "manager",
            ])
            #expect(JSON(updated)["data"]["department"].string == "Security")
            #expect(JSON(updated)["data"]["role"].string == "manager")
            #expect(JSON(updated)["data"]["first_name"].string == "Test")
            let invalid = try await app.send(.PUT, "/api/v1/users/\(user.id!)", token: tenant.token, json: [
                "manager_id": user.id!.uuidString, "email": "x",
            ])
            expectError(invalid, .badRequest, "VALIDATION_ERROR")
            #expect(JSON(invalid)["error"]["details"].keys == ["manager_id", "email"])
            expectError(try await app.send(.PUT, "/api/v1/users/\(user.id!)", json: [:]), .unauthorized, "UNAUTHORIZED")
        }
    }

    @Test func deleteRemovesThePersonButKeepsTheirHistoryPseudonymous() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let gone = try await Factory.user(app, in: tenant, email: "gone@acme.test", firstName: "Gina", lastName: "Gone")
            let goneToken = try await Factory.token(app, for: gone)
            let report = try await Factory.user(app, in: tenant)
            report.$manager.id = gone.id
            try await report.save(on: app.db)
            let module = try await TrainingFactory.builtinModule(app)
            _ = try await TrainingFactory.campaign(app, tenant: tenant, modules: [module])
            let enrolments = try await TrainingFactory.enrollments(app, of: gone)
            #expect(enrolments.count == 1)

            let deleted = try await app.send(.DELETE, "/api/v1/users/\(gone.id!)", token: tenant.token)
            #expect(deleted.status == .ok)
            #expect(JSON(deleted)["data"]["id"].string == gone.id!.wire)
            #expect(JSON(deleted)["data"]["deleted"].bool == true)
            // Gone from every view: 404, no list, no search, no v4, no sign-in.
            expectError(try await app.send(.GET, "/api/v1/users/\(gone.id!)", token: tenant.token), .notFound, "NOT_FOUND")
            let list = JSON(try await app.send(.GET, "/api/v1/users?per_page=100", token: tenant.token))
            #expect(!list["data"].array.contains { $0["id"].string?.lowercased() == gone.id!.uuidString.lowercased() })
            #expect(JSON(try await app.send(.GET, "/api/v1/users?search=gina", token: tenant.token))["data"].array.isEmpty)
            let msp = try await Factory.user(app, company: tenant.company, client: nil, role: .mspAdmin)
            let v4 = JSON(try await app.send(.GET, "/api/v4/users?per_page=100", token: try await Factory.token(app, for: msp)))
            #expect(!v4["data"].array.contains { $0["email"].string == "gone@acme.test" })
            expectError(try await app.send(.GET, "/api/v3/auth/user", token: goneToken), .unauthorized, "UNAUTHORIZED")
            expectError(try await app.send(.DELETE, "/api/v1/users/\(gone.id!)", token: tenant.token), .notFound, "NOT_FOUND")
            // The history stays, naming nobody.
            let tombstone = try #require(try await User.find(gone.id, on: app.db))
            #expect(tombstone.email != "gone@acme.test" && tombstone.firstName != "Gina" && tombstone.passwordHash == nil)
            #expect(try await TrainingFactory.enrollments(app, of: tombstone).count == 1)
            #expect(try await User.find(report.id, on: app.db)?.$manager.id == nil)
            #expect(try await AuditEntry.query(on: app.db).filter(\.$action == "user.erased").count() == 1)
            // The address is free again.
            let again = try await app.send(.POST, "/api/v1/users", token: tenant.token,
                                           json: ["first_name": "G", "last_name": "Again", "email": "gone@acme.test"])
            #expect(again.status == .created)
            // Deactivating is a PUT of status.
            let paused = try await app.send(.PUT, "/api/v1/users/\(report.id!)", token: tenant.token, json: ["status": "inactive"])
            #expect(JSON(paused)["data"]["status"].string == "inactive")
            try await expectOtherTenantGets404(app, .DELETE, "/api/v1/users/\(report.id!)")
            #expect(try await User.find(report.id, on: app.db)?.deletedAt == nil)
            expectError(try await app.send(.DELETE, "/api/v1/users/\(report.id!)"), .unauthorized, "UNAUTHORIZED")
        }
    }

    @Test func mspStaffChooseTheClientWithTheHeader() async throws {
        try await withBulwark { app in
            let msp = try await Factory.tenant(app, adminRole: .mspAdmin)
            let second = Client(companyID: msp.company.id!, name: "Second")
            try await second.create(on: app.db)
            try await Factory.user(app, company: msp.company, client: second, email: "in-second@acme.test")
            var headers = HTTPHeaders()
            headers.add(name: "X-Client-Id", value: second.id!.uuidString)
            let list = JSON(try await app.send(.GET, "/api/v1/users", token: msp.token, headers: headers))
            #expect(list["data"].array.map { $0["email"].string } == ["in-second@acme.test"])
            let other = try await Factory.tenant(app, name: "Other")
            headers.replaceOrAdd(name: "X-Client-Id", value: other.clientID)
            expectError(try await app.send(.GET, "/api/v1/users", token: msp.token, headers: headers), .notFound, "NOT_FOUND")
        }
    }
}

@Suite struct UserImportTests {
    @Test func importsValidRowsAndReportsEachInvalidOne() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            try await Factory.user(app, in: tenant, email: "existing@acme.test")
            let csv = """
            first_name,last_name,email,position,department,manager_email
            Mia,Manager,mia@acme.test,Head,Ops,
            Rob,Report,rob@acme.test,Clerk,Ops,mia@acme.test
            ,NoFirst,nofirst@acme.test,,,
            Dup,Existing,existing@acme.test,,,
            Bad,Email,not-an-email,,,
            Orphan,Report,orphan@acme.test,,,nobody@acme.test
            "Quoted, Name",Q,quoted@acme.test,,"R&D",existing@acme.test
            "Zoë ""Z"" \\",Ñúñez\u{1F600},zoe@acme.test,"Line\tTab",,
            """
            let response = try await app.send(.POST, "/api/v1/users/import", token: tenant.token, body: csv,
                                              contentType: HTTPMediaType(type: "text", subType: "csv"))
            #expect(response.status == .ok)
            let data = JSON(response)["data"]
            #expect(data["total_rows"].int == 8)
            #expect(data["imported"].int == 4)
            #expect(data["failed"].int == 4)
            #expect(data["errors"].array.compactMap { $0["row"].int } == [4, 5, 6, 7])
            #expect(data["errors"][0]["errors"]["first_name"].exists)
            #expect(data["errors"][3]["errors"]["manager_email"].exists)
            let rob = try await User.query(on: app.db).filter(\.$email == "rob@acme.test").first()
            let mia = try await User.query(on: app.db).filter(\.$email == "mia@acme.test").first()
            #expect(rob?.$manager.id == mia?.id)
            #expect(rob?.$client.id == tenant.client.id)
            let quoted = try await User.query(on: app.db).filter(\.$email == "quoted@acme.test").first()
            #expect(quoted?.firstName == "Quoted, Name")
            #expect(quoted?.department == "R&D")
            #expect(quoted?.position == nil)
            // Quotes, a backslash, a tab and characters beyond ASCII arrive as written (the batch is bound as JSON on
            // SQLite and as arrays on PostgreSQL).
            let zoe = try #require(try await User.query(on: app.db).filter(\.$email == "zoe@acme.test").first())
            #expect(zoe.firstName == "Zoë \"Z\" \\")
            #expect(zoe.lastName == "Ñúñez\u{1F600}")
            #expect(zoe.position == "Line\tTab")
            #expect(zoe.department == nil)
            #expect(zoe.createdAt != nil && zoe.role == .companyUser && zoe.status == "active")
        }
    }

    @Test func rejectsAFileWithoutTheRequiredColumns() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let response = try await app.send(.POST, "/api/v1/users/import", token: tenant.token, body: "name,mail\nA,b@c.d",
                                              contentType: HTTPMediaType(type: "text", subType: "csv"))
            expectError(response, .badRequest, "VALIDATION_ERROR")
            let empty = try await app.send(.POST, "/api/v1/users/import", token: tenant.token)
            expectError(empty, .badRequest, "VALIDATION_ERROR")
            expectError(try await app.send(.POST, "/api/v1/users/import", body: "x"), .unauthorized, "UNAUTHORIZED")
        }
    }

    @Test func importLandsInTheCallersClientOnly() async throws {
        try await withBulwark { app in
            let tenant = try await Factory.tenant(app)
            let other = try await Factory.tenant(app, name: "Other")
            // An address no generated one contains (admins get a random hex suffix, which could end in "ab").
            let csv = "first_name,last_name,email\nA,B,imported.person@acme.test\n"
            _ = try await app.send(.POST, "/api/v1/users/import", token: other.token, body: csv,
                                   contentType: HTTPMediaType(type: "text", subType: "csv"))
            let imported = try await User.query(on: app.db).filter(\.$email == "imported.person@acme.test").first()
            #expect(imported?.$client.id == other.client.id)
            let list = JSON(try await app.send(.GET, "/api/v1/users?search=imported.person", token: tenant.token))
            #expect(list["data"].array.isEmpty)
        }
    }
}
