import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A problem with the operator's configuration that must stop the start, with a message saying what to fix.
struct ConfigurationError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The master key file (`BULWARK_MASTER_KEY_FILE`). Read strictly: a file that exists but cannot be read, does not hold
/// a key, or is readable by everyone stops the start instead of being replaced, because replacing it would make every
/// sealed secret unreadable and a world-readable key protects nothing.
struct MasterKeyFile {
    let path: String

    func readIfPresent() throws -> SymmetricKey? {
        var info = stat()
        guard stat(path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw ConfigurationError("The master key file \(path) cannot be examined (\(String(cString: strerror(errno)))).")
        }
        if info.st_mode & S_IFMT != S_IFREG {
            throw ConfigurationError("The master key file \(path) is not a regular file.")
        }
        if info.st_mode & (S_IROTH | S_IWOTH) != 0 {
            throw ConfigurationError("The master key file \(path) is readable or writable by every user; run `chmod 600 \(path)` and start again.")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError("The master key file \(path) cannot be read; check its owner and permissions.")
        }
        guard let key = SecretBox.decodeKey(String(decoding: data, as: UTF8.self)) else {
            throw ConfigurationError("The master key file \(path) does not hold a base64 32-byte key. Restore it from your backup; Bulwark never overwrites it.")
        }
        return key
    }

    /// Creates the file with mode 0600 only if it does not exist yet. Returns false when someone else created it first.
    func createExclusively(_ key: SymmetricKey) throws -> Bool {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard descriptor >= 0 else {
            if errno == EEXIST { return false }
            throw ConfigurationError("The master key file \(path) cannot be created (\(String(cString: strerror(errno)))).")
        }
        defer { close(descriptor) }
        let text = key.withUnsafeBytes { Data($0) }.base64EncodedString() + "\n"
        let written = text.utf8CString.withUnsafeBufferPointer { buffer in
            write(descriptor, buffer.baseAddress, buffer.count - 1)
        }
        guard written == text.utf8.count, fsync(descriptor) == 0 else {
            throw ConfigurationError("The master key file \(path) could not be written completely.")
        }
        return true
    }
}
