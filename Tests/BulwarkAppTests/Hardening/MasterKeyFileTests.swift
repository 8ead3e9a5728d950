@testable import BulwarkApp
import Crypto
import Foundation
import Testing

/// Item 10: the master key file is never overwritten, and a doubtful one stops the start.
@Suite struct MasterKeyFileTests {
    private func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("bulwark-key-\(UUID().uuidString)").path
    }

    @Test func aMissingFileIsCreatedPrivateAndReadBack() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let file = MasterKeyFile(path: path)
        #expect(try file.readIfPresent() == nil)
        let key = SymmetricKey(size: .bits256)
        #expect(try file.createExclusively(key))
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
        #expect(mode & 0o777 == 0o600)
        #expect(try file.readIfPresent() == key)
        // A second creation never replaces it.
        #expect(try file.createExclusively(SymmetricKey(size: .bits256)) == false)
        #expect(try file.readIfPresent() == key)
    }

    @Test func malformedUnreadableOrWorldReadableFilesStopTheStartUntouched() throws {
        let path = temporaryPath()
        defer { try? FileManager.default.removeItem(atPath: path) }
        try Data("not a key".utf8).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        #expect(throws: ConfigurationError.self) { try MasterKeyFile(path: path).readIfPresent() }
        var settings = testSettings()
        settings.masterKey = nil
        settings.database = .sqliteFile(temporaryPath())
        settings.masterKeyFile = path
        #expect(throws: ConfigurationError.self) { try SecretBox.load(settings: settings, logger: .init(label: "test")) }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "not a key", "never overwritten")

        let key = SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }.base64EncodedString()
        try Data(key.utf8).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        #expect(throws: ConfigurationError.self) { try MasterKeyFile(path: path).readIfPresent() }
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: path)
        #expect(try MasterKeyFile(path: path).readIfPresent() != nil)
        #expect(throws: ConfigurationError.self) { try MasterKeyFile(path: FileManager.default.temporaryDirectory.path).readIfPresent() }
    }
}
