import NIOCore
import NIOPosix
import Vapor
#if canImport(Glibc)
import Glibc
#endif

/// The one gate for connections whose target a tenant sets (sending profiles now; webhooks, integrations, AI providers
/// and feeds later). It resolves the name, checks every address against the operator's `OutboundPolicy`, and hands back
/// the vetted addresses to connect to: never the name, which could resolve somewhere else a moment later. It runs on
/// every connection, not only when a target is saved.
struct OutboundGuard: Sendable {
    let policy: OutboundPolicy
    /// Name resolution; tests replace it to play DNS.
    var resolve: @Sendable (_ host: String, _ port: Int) async throws -> [SocketAddress] = OutboundGuard.systemResolve

    func vet(host: String, port: Int) async throws -> [SocketAddress] {
        let addresses: [SocketAddress]
        if let literal = IPAddress(host) {
            addresses = [try SocketAddress(ipAddress: literal.description, port: port)]
        } else {
            addresses = (try? await resolve(host, port)) ?? []
        }
        switch policy.decide(host: host, port: port, addresses: addresses.compactMap { $0.ipAddress.flatMap(IPAddress.init) }) {
        case .allowed: return addresses
        case let .refused(reason): throw OutboundRefused(reason: reason)
        }
    }

    /// getaddrinfo on NIO's thread pool (it blocks), every address of the name.
    @Sendable static func systemResolve(host: String, port: Int) async throws -> [SocketAddress] {
        try await NIOThreadPool.singleton.runIfActive {
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var list: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(host, String(port), &hints, &list) == 0, let first = list else { return [] }
            defer { freeaddrinfo(list) }
            var result: [SocketAddress] = []
            var cursor: UnsafeMutablePointer<addrinfo>? = first
            while let entry = cursor {
                if let raw = entry.pointee.ai_addr {
                    switch entry.pointee.ai_family {
                    case AF_INET:
                        raw.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { result.append(SocketAddress($0.pointee, host: host)) }
                    case AF_INET6:
                        raw.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { result.append(SocketAddress($0.pointee, host: host)) }
                    default:
                        break
                    }
                }
                cursor = entry.pointee.ai_next
            }
            return result
        }
    }
}

/// A target the outbound policy does not allow. `reason` (what the name resolved to, and why that is refused) is for the
/// operator's log only: told to a tenant, it would answer questions about the server's network ("does this internal
/// name exist, is it private?"). Tenants get `description`, the same whatever the reason.
struct OutboundRefused: Error, CustomStringConvertible {
    let reason: String
    var description: String { Self.publicDescription }
    static let publicDescription = "the host cannot be resolved, or is not allowed by this server's outbound policy"
}

extension Application {
    private struct OutboundGuardKey: StorageKey { typealias Value = OutboundGuard }

    var outboundGuard: OutboundGuard {
        get { storage[OutboundGuardKey.self] ?? OutboundGuard(policy: settings.outbound) }
        set { storage[OutboundGuardKey.self] = newValue }
    }
}
