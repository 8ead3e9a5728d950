import Testing
@testable import BulwarkApp

@Suite struct ForwardedForTests {
    let proxies = ["10.0.0.0/8", "fd00::/8"].compactMap(IPNetwork.init)

    func client(_ peer: String?, _ header: String?) -> String? {
        ForwardedFor.clientAddress(peer: peer, header: header, trusted: proxies)
    }

    @Test func nilPeer() {
        #expect(client(nil, "1.2.3.4") == nil)
        #expect(client(nil, nil) == nil)
    }

    @Test func untrustedPeerIgnoresHeader() {
        #expect(client("203.0.113.9", "1.2.3.4") == "203.0.113.9")
        #expect(client("203.0.113.9", nil) == "203.0.113.9")
        #expect(client("::FFFF:203.0.113.9", "1.2.3.4") == "203.0.113.9")  // canonical form
        #expect(ForwardedFor.clientAddress(peer: "10.0.0.1", header: "1.2.3.4", trusted: []) == "10.0.0.1")
    }

    @Test func unparseablePeerIsReturnedAsGiven() {
        #expect(client("/var/run/bulwark.sock", "1.2.3.4") == "/var/run/bulwark.sock")
    }

    @Test func trustedPeerWithoutHeader() {
        #expect(client("10.0.0.1", nil) == "10.0.0.1")
        #expect(client("10.0.0.1", "") == "10.0.0.1")
        #expect(client("10.0.0.1", "  ") == "10.0.0.1")
    }

    @Test func trustedPeerTakesRightmostUntrustedHop() {
        #expect(client("10.0.0.1", "1.2.3.4") == "1.2.3.4")
        #expect(client("10.0.0.1", "5.6.7.8, 1.2.3.4") == "1.2.3.4")
    }

    @Test func chainOfTwoTrustedProxies() {
        #expect(client("10.0.0.1", "1.2.3.4, 10.0.0.2") == "1.2.3.4")
        #expect(client("10.0.0.1", "1.2.3.4,10.9.9.9 ,  fd00::7") == "1.2.3.4")
    }

    @Test func spoofedLeftmostValuesIgnored() {
        // The client sent "X-Forwarded-For: 127.0.0.1, 10.0.0.5"; our proxy appended the real address.
        #expect(client("10.0.0.1", "127.0.0.1, 10.0.0.5, 198.51.100.20") == "198.51.100.20")
        #expect(client("10.0.0.1", "evil, 198.51.100.20") == "198.51.100.20")
    }

    @Test func junkHopStopsAtLastTrusted() {
        #expect(client("10.0.0.1", "1.2.3.4, garbage") == "10.0.0.1")
        #expect(client("10.0.0.1", "1.2.3.4, garbage, 10.0.0.2") == "10.0.0.2")
        #expect(client("10.0.0.1", "1.2.3.4, , 10.0.0.2") == "10.0.0.2")  // empty hop
        #expect(client("10.0.0.1", "1.2.3.4,") == "10.0.0.1")
        #expect(client("10.0.0.1", "unknown") == "10.0.0.1")
        #expect(client("10.0.0.1", "1.2.3.4:99999") == "10.0.0.1")
        #expect(client("10.0.0.1", "[::1]x") == "10.0.0.1")
        #expect(client("10.0.0.1", "010.0.0.1") == "10.0.0.1")
    }

    @Test func allHopsTrustedReturnsLeftmost() {
        #expect(client("10.0.0.1", "10.0.0.3, 10.0.0.2") == "10.0.0.3")
    }

    @Test func portsAreStripped() {
        #expect(client("10.0.0.1", "1.2.3.4:5678") == "1.2.3.4")
        #expect(client("10.0.0.1", "[2001:db8::1]:80") == "2001:db8::1")
        #expect(client("10.0.0.1", "1.2.3.4:5678, 10.0.0.2:443") == "1.2.3.4")
        #expect(client("10.0.0.1:443", "1.2.3.4") == "1.2.3.4")
    }

    @Test func ipv6Hops() {
        #expect(client("10.0.0.1", "[2001:DB8::1]") == "2001:db8::1")
        #expect(client("10.0.0.1", "2001:db8::1") == "2001:db8::1")
        #expect(client("10.0.0.1", "[::ffff:1.2.3.4]:80") == "1.2.3.4")
        #expect(client("fd00::1", "2606:4700::1, [fd00::2]:443") == "2606:4700::1")
        #expect(client("[fd00::1]", "1.2.3.4") == "1.2.3.4")
    }
}
