import NIOCore
import Testing
@testable import BulwarkApp

@Suite struct IPAddressTests {
    // MARK: Parsing + canonical formatting

    @Test(arguments: [
        ("10.0.0.1", "10.0.0.1"),
        ("0.0.0.0", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.255"),
        ("::1", "::1"),
        ("::", "::"),
        ("[::1]", "::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("[fe80::1%eth0]", "fe80::1"),
        ("fe80::1%25", "fe80::1"),
        ("2001:DB8::A", "2001:db8::a"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
        ("1::", "1::"),
        ("1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"),        // a single zero group is not compressed
        ("::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"),
        ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),         // longest run wins
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),   // first run wins a tie
        ("::ffff:127.0.0.1", "127.0.0.1"),               // mapped is printed as a dotted quad
        ("::FFFF:7f00:1", "127.0.0.1"),
        ("::1.2.3.4", "::102:304"),                      // IPv4-compatible is plain IPv6
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ("1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"),
    ])
    func parsesAndFormats(input: String, canonical: String) throws {
        let address = try #require(IPAddress(input))
        #expect(address.description == canonical)
        #expect(IPAddress(canonical) == address)  // canonical text round-trips
    }

    @Test(arguments: [
        "", " ", "1.2.3", "1.2.3.4.5", "010.0.0.1", "1.2.3.04", "256.0.0.1", "1.2.3.-1", "1.2.3.4 ", " 1.2.3.4",
        "1..2.3", "a.b.c.d", "1.2.3.4/8", "[1.2.3.4]", "1.2.3.4%eth0", "１.２.３.４",
        ":", ":::", "::::", "1::2::3", ":1:2:3:4:5:6:7", "1:2:3:4:5:6:7:", "1:2:3:4:5:6:7:8:9",
        "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7", "12345::", "g::1", "::1%", "fe80::1%eth 0",
        "[::1", "::1]", "[]", "[::1]:80", "::1.2.3", "::256.1.1.1", "1.2.3.4::", "::1.2.3.4:5",
        "1:2:3:4:5:6:7:1.2.3.4", "::ffff:010.0.0.1", "0x7f.0.0.1", "2130706433",
    ])
    func rejects(input: String) {
        #expect(IPAddress(input) == nil, "\(input) should not parse")
    }

    @Test func ipv4AndMappedAreTheSameAddress() throws {
        let v4 = try #require(IPAddress("127.0.0.1"))
        let mapped = try #require(IPAddress("::ffff:127.0.0.1"))
        #expect(v4 == mapped)
        #expect(v4.isIPv4 && mapped.isIPv4)
        #expect(IPAddress("::1")?.isIPv4 == false)
        #expect(IPAddress("::127.0.0.1")?.isIPv4 == false)  // IPv4-compatible is not mapped
    }

    // MARK: Networks

    @Test func networkParsing() {
        #expect(IPNetwork("10.0.0.0/8")?.description == "10.0.0.0/8")
        #expect(IPNetwork("10.1.2.3/8")?.description == "10.0.0.0/8")  // host bits cleared
        #expect(IPNetwork("fd00::/8")?.description == "fd00::/8")
        #expect(IPNetwork("1.2.3.4")?.description == "1.2.3.4/32")
        #expect(IPNetwork("::1")?.description == "::1/128")
        #expect(IPNetwork("10.0.0.0/8")?.prefixLength == 104)
        for bad in ["", "/8", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/08", "10.0.0.0/+8", "10.0.0.0/8/8",
                    "10.0.0.0/ 8", "junk/8", "10.0.0/8", "::/-1"] {
            #expect(IPNetwork(bad) == nil, "\(bad) should not parse")
        }
    }

    @Test func ipv4Boundaries() throws {
        let all = try #require(IPNetwork("0.0.0.0/0"))
        #expect(all.contains(IPAddress("0.0.0.0")!) && all.contains(IPAddress("255.255.255.255")!))
        #expect(!all.contains(IPAddress("::1")!))  // an IPv4 /0 covers IPv4 only
        #expect(!all.contains(IPAddress("2606:4700::1")!))

        let ten = try #require(IPNetwork("10.0.0.0/8"))
        #expect(ten.contains(IPAddress("10.0.0.0")!) && ten.contains(IPAddress("10.255.255.255")!))
        #expect(!ten.contains(IPAddress("9.255.255.255")!) && !ten.contains(IPAddress("11.0.0.0")!))
        #expect(ten.contains(IPAddress("::ffff:10.1.2.3")!))

        let host = try #require(IPNetwork("192.168.1.7/32"))
        #expect(host.contains(IPAddress("192.168.1.7")!))
        #expect(!host.contains(IPAddress("192.168.1.6")!) && !host.contains(IPAddress("192.168.1.8")!))
    }

    @Test func ipv6Boundaries() throws {
        let linkLocal = try #require(IPNetwork("fe80::/10"))
        #expect(linkLocal.contains(IPAddress("fe80::")!))
        #expect(linkLocal.contains(IPAddress("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff")!))
        #expect(!linkLocal.contains(IPAddress("fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff")!))
        #expect(!linkLocal.contains(IPAddress("fec0::")!))

        let single = try #require(IPNetwork("2001:db8::1/128"))
        #expect(single.contains(IPAddress("2001:db8::1")!))
        #expect(!single.contains(IPAddress("2001:db8::")!) && !single.contains(IPAddress("2001:db8::2")!))

        let all = try #require(IPNetwork("::/0"))
        #expect(all.contains(IPAddress("1.2.3.4")!) && all.contains(IPAddress("ffff::")!))

        // Prefixes that straddle the 64-bit halves.
        let p65 = try #require(IPNetwork("2001:db8:0:0:8000::/65"))
        #expect(p65.contains(IPAddress("2001:db8::ffff:ffff:ffff:ffff")!))
        #expect(!p65.contains(IPAddress("2001:db8::7fff:ffff:ffff:ffff")!))
        let p64 = try #require(IPNetwork("2001:db8::/64"))
        #expect(p64.contains(IPAddress("2001:db8::ffff:ffff:ffff:ffff")!))
        #expect(!p64.contains(IPAddress("2001:db8:0:1::")!))
    }

    /// A request's peer is read from its socket's bytes: the same address as its text would parse to.
    @Test(arguments: ["127.0.0.1", "203.0.113.250", "::1", "2001:db8::42", "::ffff:198.51.100.7", "fe80::1:2:3:4"])
    func aSocketsAddressIsWhatItsTextParsesTo(text: String) throws {
        let socket = try SocketAddress(ipAddress: text, port: 443)
        let fromBytes = try #require(IPAddress(socket))
        #expect(fromBytes == IPAddress(text))
        #expect(fromBytes.description == IPAddress(text)?.description)
        #expect(IPAddress(try SocketAddress(unixDomainSocketPath: "/tmp/bulwark.sock")) == nil)
    }
}
