import NIOSSL
import Vapor

extension Application {
    private struct PhishingMailerKey: StorageKey { typealias Value = any Mailer }
    private struct TrustRootsKey: StorageKey { typealias Value = [NIOSSLCertificate] }

    /// Replaces every sending profile's transport (tests and benchmarks that count messages).
    var phishingMailerOverride: (any Mailer)? {
        get { storage[PhishingMailerKey.self] }
        set { storage[PhishingMailerKey.self] = newValue }
    }

    /// Extra certificate authorities trusted for sending profiles (a private CA; a test server's certificate).
    var smtpTrustRoots: [NIOSSLCertificate] {
        get { storage[TrustRootsKey.self] ?? [] }
        set { storage[TrustRootsKey.self] = newValue }
    }
}
