import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(Glibc)
private let systemWrite = Glibc.write
#else
private let systemWrite = Darwin.write
#endif

/// One append-only file of a `WriteBehindJournal`. Its writer holds an exclusive `flock` on it for as long as the file
/// exists, so a file nobody holds belongs to a process that is gone and may be replayed by another (the kernel drops
/// the lock when its holder dies, `kill -9` included).
///
/// A record is `length (u32 LE) · FNV-1a of the payload (u32 LE) · payload`. `write(2)` hands the bytes to the kernel
/// before the caller is answered, so a record survives the process being killed; like SQLite's `synchronous=NORMAL`
/// it is not flushed to the disk (a power cut may take the last moments of both).
final class JournalSegment: @unchecked Sendable {
    let path: String
    private var descriptor: Int32
    private(set) var size = 0
    /// The journal's sequence number of the last record written here.
    var lastSequence: UInt64 = 0
    /// Appends that reserved room here and have not finished writing (the file is kept until they have).
    var writers = 0

    struct Failure: Error, CustomStringConvertible {
        let description: String
        init(_ what: String, _ path: String, errno code: Int32 = errno) {
            description = "\(what) \(path): \(String(cString: strerror(code)))"
        }
    }

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    deinit { if descriptor >= 0 { close(descriptor) } }

    /// A new, empty segment owned by this process.
    static func create(in directory: String, prefix: String) throws -> JournalSegment {
        let name = "\(prefix)-\(ProcessInfo.processInfo.processIdentifier)-\(UUID.timeOrdered().lowercasedString)"
        let path = directory + "/" + name + ".journal"
        // Created and locked under a name `orphans` ignores, then renamed: nobody can take a new file for an orphan.
        let creating = directory + "/" + name + ".creating"
        let fd = open(creating, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw Failure("cannot create", creating) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0, rename(creating, path) == 0 else {
            let code = errno
            close(fd)
            unlink(creating)
            throw Failure("cannot lock or name", path, errno: code)
        }
        return JournalSegment(path: path, descriptor: fd)
    }

    /// Segments in `directory` whose writer is gone, each now locked by the caller, oldest first (names are
    /// time-ordered within a process). Unreadable or still-held files are skipped.
    static func orphans(in directory: String, prefix: String) -> [JournalSegment] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        return names.filter { $0.hasPrefix(prefix + "-") && $0.hasSuffix(".journal") }.sorted().compactMap { name in
            let path = directory + "/" + name
            // Never through a link, never a device or a pipe (a read would block).
            let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
            guard fd >= 0 else { return nil }
            var info = stat()
            guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                close(fd)
                return nil
            }
            return JournalSegment(path: path, descriptor: fd)
        }
    }

    static func makeDirectory(_ directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
    }

    /// A record as it is written: length, checksum, payload.
    static func frame(_ payload: [UInt8]) -> [UInt8] {
        var framed = [UInt8]()
        framed.reserveCapacity(payload.count + 8)
        appendUInt32(UInt32(payload.count), to: &framed)
        appendUInt32(checksum(payload), to: &framed)
        framed.append(contentsOf: payload)
        return framed
    }

    /// Counts a record about to be written (under the journal's lock, so rotation sees the size at once).
    func reserve(_ bytes: Int) {
        size += bytes
        writers += 1
    }

    /// Writes one framed record; returns once the kernel holds all of it. One `write(2)` on an `O_APPEND` file
    /// places the record whole after whatever was there, so concurrent writers never interleave.
    func write(_ framed: [UInt8]) throws {
        try framed.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = systemWrite(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    throw Failure("cannot write", path)
                }
                offset += written
            }
        }
    }

    /// Every complete record, in order. A torn or damaged tail (a write cut short) ends the reading: its caller was
    /// never answered.
    func records() -> [[UInt8]] {
        // Read through the locked descriptor, not the name.
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        var position: off_t = 0
        while true {
            let count = chunk.withUnsafeMutableBytes { pread(descriptor, $0.baseAddress, $0.count, position) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            bytes.append(contentsOf: chunk[..<count])
            position += off_t(count)
        }
        var records: [[UInt8]] = []
        var offset = 0
        while offset + 8 <= bytes.count {
            let length = Int(Self.readUInt32(bytes, at: offset))
            let sum = Self.readUInt32(bytes, at: offset + 4)
            let start = offset + 8
            guard length <= bytes.count - start else { break }
            let payload = Array(bytes[start..<start + length])
            guard Self.checksum(payload) == sum else { break }
            records.append(payload)
            offset = start + length
        }
        return records
    }

    /// Removes the file, then lets go of it: unlinking first means no other process can find it unlocked.
    func remove() {
        unlink(path)
        close(descriptor)
        descriptor = -1
    }

    /// Lets go of the file and leaves it for a later replay.
    func release() {
        close(descriptor)
        descriptor = -1
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 {
        var hash: UInt32 = 2_166_136_261
        for byte in bytes { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        return hash
    }

    static func appendUInt32(_ value: UInt32, to bytes: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    static func readUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
        UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
    }
}

/// The fields of one journal record, written and read in the same order.
struct JournalBytes {
    private(set) var bytes: [UInt8]
    private var offset = 0

    struct Malformed: Error {}

    init() { bytes = [] }
    init(reading bytes: [UInt8]) { self.bytes = bytes }

    mutating func write(_ value: UUID) {
        withUnsafeBytes(of: value.uuid) { bytes.append(contentsOf: $0) }
    }

    mutating func write(_ value: Date) {
        withUnsafeBytes(of: value.timeIntervalSince1970.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func write(_ value: String?) {
        guard let value else { return JournalSegment.appendUInt32(.max, to: &bytes) }
        let utf8 = Array(value.utf8)
        JournalSegment.appendUInt32(UInt32(utf8.count), to: &bytes)
        bytes.append(contentsOf: utf8)
    }

    mutating func readUUID() throws -> UUID {
        let raw = try take(16)
        return UUID(uuid: (raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7], raw[8], raw[9], raw[10], raw[11],
                           raw[12], raw[13], raw[14], raw[15]))
    }

    mutating func readDate() throws -> Date {
        let raw = try take(8)
        var bits: UInt64 = 0
        for (index, byte) in raw.enumerated() { bits |= UInt64(byte) << (8 * UInt64(index)) }
        return Date(timeIntervalSince1970: Double(bitPattern: bits))
    }

    mutating func readString() throws -> String? {
        let length = JournalSegment.readUInt32(try take(4), at: 0)
        if length == .max { return nil }
        return String(decoding: try take(Int(length)), as: UTF8.self)
    }

    private mutating func take(_ count: Int) throws -> [UInt8] {
        guard count <= bytes.count - offset else { throw Malformed() }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }
}
