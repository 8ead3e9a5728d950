import Testing
@testable import BulwarkApp

@Suite struct OutboundPolicyTests {
    func ip(_ text: String) -> IPAddress { IPAddress(text)! }

    func reason(of decision: OutboundPolicy.Decision) -> String? {
        if case .refused(let reason) = decision { return reason }
        return nil
    }

    // MARK: Ranges

    @Test(arguments: [
        ("0.0.0.0", "unspecified"), ("0.255.255.255", "unspecified"),
        ("10.0.0.0", "private"), ("10.255.255.255", "private"),
        ("172.16.0.1", "private"), ("172.31.255.255", "private"),
        ("192.168.0.1", "private"),
        ("127.0.0.1", "loopback"), ("127.255.255.254", "loopback"),
        ("169.254.0.1", "link-local"), ("169.254.169.254", "cloud metadata"),
        ("100.64.0.1", "shared address space"), ("100.127.255.255", "shared address space"),
        ("100.100.100.200", "cloud metadata"),
        ("192.0.0.8", "reserved"), ("192.0.2.1", "reserved"), ("198.18.0.1", "reserved"), ("198.19.255.255", "reserved"),
        ("198.51.100.1", "reserved"), ("203.0.113.1", "reserved"),
        ("224.0.0.1", "multicast"), ("239.255.255.255", "multicast"),
        ("240.0.0.1", "reserved"), ("255.255.255.254", "reserved"), ("255.255.255.255", "broadcast"),
        ("::", "unspecified"), ("::1", "loopback"),
        ("fe80::1", "link-local"), ("febf::1", "link-local"),
        ("fc00::1", "unique-local"), ("fd12:3456::1", "unique-local"), ("fd00:ec2::254", "cloud metadata"),
        ("ff02::1", "multicast"), ("2001:db8::1", "reserved"), ("fec0::1", "site-local"),
        ("fe00::1", "reserved"), ("100::1", "reserved"), ("64:ff9b:1::1", "reserved"), ("4000::1", "reserved"),
        ("::ffff:127.0.0.1", "loopback"), ("::ffff:169.254.169.254", "cloud metadata"),
        ("64:ff9b::7f00:1", "loopback"), ("64:ff9b::10.0.0.1", "private"), ("64:ff9b::a9fe:a9fe", "cloud metadata"),
        ("2002:7f00:1::", "loopback"), ("2002:a00:1:ffff::1", "private"), ("2002:c0a8:101::", "private"),
        ("::127.0.0.1", "loopback"), ("::10.1.2.3", "private"), ("::0.0.0.2", "unspecified"),
    ])
    func nonPublicRangesAreRefusedWithReason(address: String, word: String) throws {
        let reason = try #require(OutboundPolicy.nonPublicReason(ip(address)))
        #expect(reason.contains(word), "\(address): \(reason)")
        let decision = OutboundPolicy.denyAll.decide(host: address, port: 443, addresses: [ip(address)])
        let message = try #require(self.reason(of: decision))
        #expect(message.contains(word) && message.hasPrefix(ip(address).description), "\(message)")
    }

    @Test(arguments: [
        "93.184.216.34", "2606:4700::1", "8.8.8.8", "1.1.1.1", "172.15.255.255", "172.32.0.0", "100.63.255.255",
        "100.128.0.0", "169.253.255.255", "223.255.255.255", "198.17.255.255", "198.20.0.0", "192.0.3.0",
        "2a00:1450:4001::1", "2002:5db8:d822::1", "64:ff9b::5db8:d822", "::93.184.216.34",
    ])
    func publicAddressesAreAllowed(address: String) {
        #expect(OutboundPolicy.nonPublicReason(ip(address)) == nil, "\(address)")
        #expect(OutboundPolicy.denyAll.decide(host: "example.com", port: 443, addresses: [ip(address)]) == .allowed)
    }

    @Test func exactMessages() {
        let deny = OutboundPolicy.denyAll
        #expect(deny.decide(host: "127.0.0.1", port: 25, addresses: [ip("127.0.0.1")])
            == .refused("127.0.0.1 is a loopback address"))
        #expect(deny.decide(host: "Evil.Example", port: 80, addresses: [ip("169.254.169.254")])
            == .refused("Evil.Example resolves to 169.254.169.254, a cloud metadata address"))
        #expect(deny.decide(host: "x\n\u{1b}y", port: 80, addresses: [])
            == .refused("xy could not be resolved"))
        #expect(deny.decide(host: "2002:7f00:1::", port: 80, addresses: [ip("2002:7f00:1::")])
            == .refused("2002:7f00:1:: is a 6to4 address embedding 127.0.0.1, a loopback address"))
    }

    // MARK: Allow list

    @Test func starAllowsEverything() throws {
        let policy = try OutboundPolicy(allowList: " * ")
        #expect(policy.allowsEverything)
        #expect(!OutboundPolicy.denyAll.allowsEverything)
        #expect(policy.decide(host: "localhost", port: 25, addresses: [ip("127.0.0.1"), ip("::1")]) == .allowed)
    }

    @Test func addressPortAllowsThatPortOnly() throws {
        let policy = try OutboundPolicy(allowList: "127.0.0.1:25, [::1]:25")
        #expect(policy.decide(host: "127.0.0.1", port: 25, addresses: [ip("127.0.0.1")]) == .allowed)
        #expect(policy.decide(host: "localhost", port: 25, addresses: [ip("127.0.0.1"), ip("::1")]) == .allowed)
        #expect(policy.decide(host: "127.0.0.1", port: 26, addresses: [ip("127.0.0.1")])
            == .refused("127.0.0.1 is a loopback address"))
        #expect(policy.decide(host: "127.0.0.2", port: 25, addresses: [ip("127.0.0.2")]) != .allowed)
        #expect(policy.decide(host: "::1", port: 26, addresses: [ip("::1")]) != .allowed)
    }

    @Test func cidrAllow() throws {
        let policy = try OutboundPolicy(allowList: "10.1.0.0/16,::1, fd00:1::/32")
        #expect(policy.decide(host: "a", port: 443, addresses: [ip("10.1.255.255")]) == .allowed)
        #expect(policy.decide(host: "a", port: 443, addresses: [ip("10.2.0.0")]) != .allowed)
        #expect(policy.decide(host: "a", port: 1, addresses: [ip("::1")]) == .allowed)
        #expect(policy.decide(host: "a", port: 1, addresses: [ip("fd00:1:ffff::9")]) == .allowed)
        #expect(policy.decide(host: "a", port: 1, addresses: [ip("fd00:2::9")]) != .allowed)
        // Listing a range does not open unrelated ranges.
        #expect(policy.decide(host: "a", port: 1, addresses: [ip("127.0.0.1")]) != .allowed)
    }

    @Test func hostNameAllowIsCaseInsensitive() throws {
        let policy = try OutboundPolicy(allowList: "Relay.Internal, smtp.corp:2525")
        let inside = [ip("10.0.0.25")]
        #expect(policy.decide(host: "relay.internal", port: 25, addresses: inside) == .allowed)
        #expect(policy.decide(host: "RELAY.INTERNAL.", port: 587, addresses: inside) == .allowed)
        #expect(policy.decide(host: "SMTP.corp", port: 2525, addresses: inside) == .allowed)
        #expect(policy.decide(host: "smtp.corp", port: 25, addresses: inside)
            == .refused("smtp.corp resolves to 10.0.0.25, a private address"))
        #expect(policy.decide(host: "other.internal", port: 25, addresses: inside) != .allowed)
        #expect(policy.decide(host: "relay.internal.evil.com", port: 25, addresses: inside) != .allowed)
    }

    @Test func mixedPublicAndPrivateResolutionIsRefused() {
        let decision = OutboundPolicy.denyAll.decide(
            host: "rebind.example", port: 443, addresses: [ip("93.184.216.34"), ip("192.168.1.1")])
        #expect(decision == .refused("rebind.example resolves to 192.168.1.1, a private address"))
    }

    @Test func emptyAddressesRefused() throws {
        #expect(OutboundPolicy.denyAll.decide(host: "nowhere.example", port: 443, addresses: [])
            == .refused("nowhere.example could not be resolved"))
        #expect(try OutboundPolicy(allowList: "*").decide(host: "x", port: 1, addresses: []) != .allowed)
    }

    @Test func emptyAllowListIsDenyAll() throws {
        for text in ["", "  ", ",", " , ,"] {
            let policy = try OutboundPolicy(allowList: text)
            #expect(!policy.allowsEverything)
            #expect(policy.decide(host: "localhost", port: 25, addresses: [ip("127.0.0.1")]) != .allowed)
            #expect(policy.decide(host: "example.com", port: 443, addresses: [ip("93.184.216.34")]) == .allowed)
        }
    }

    @Test(arguments: [
        "10.0.0.0/33", "1.2.3", "010.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:", "host:port",
        "[::1]:", "[1.2.3.4]:25", "::1:25:", "relay..internal", "-relay.internal", "relay internal", "relay/internal",
        "http://relay.internal", "relay.internal:25:25", "**", "réseau.internal", "a:b:c", ".", "[::1]25",
    ])
    func invalidEntriesThrowNamingTheEntry(entry: String) {
        do {
            _ = try OutboundPolicy(allowList: "relay.ok, \(entry)")
            Issue.record("\(entry) should have been rejected")
        } catch {
            #expect(String(describing: error).contains("\"\(entry)\""))
            #expect(error.localizedDescription.contains(entry))
        }
    }

    @Test func validEntryForms() throws {
        let text = "*, relay.internal, relay.internal:2525, 127.0.0.1:25, [::1]:25, 10.1.0.0/16, ::1, fe80::1%eth0, relay_1.local."
        #expect(throws: Never.self) { try OutboundPolicy(allowList: text) }
    }
}
