import LanesCore
import LanesEngine
import LanesPacket
import Testing

/// The forwarding apps on in-memory rings: rewrites and drop causes, exactly.
@Suite struct ForwardAppTests {
    static let nextHop = MACAddress("02:4c:00:00:01:01")!, outMAC = MACAddress("02:4c:00:00:01:02")!

    static func frame(dst: String, ttl: UInt8 = 64, v6: Bool = false, size: Int = 80) -> [UInt8] {
        var spec = FrameSpec(dstMAC: MACAddress("02:4c:00:00:00:02")!, srcMAC: MACAddress("02:4c:00:00:00:01")!,
                             src: v6 ? .v6(IPv6Address("fd00:198:18::1")!) : .v4(IPv4Address("198.18.0.1")!),
                             dst: IPAddress(dst)!, srcPort: 1024, dstPort: 9000, frameLength: size)
        spec.ttl = ttl
        var b = [UInt8](repeating: 0, count: size)
        _ = b.withUnsafeMutableBytes { FrameBuilder.build(spec, into: $0.baseAddress!) }
        return b
    }

    /// Never written after it is built (LPMTable's insertions are its init's).
    nonisolated(unsafe) static let routes = try! RouteTable(parsing: """
    198.18.1.0/24 02:4c:00:00:01:01 d1
    198.18.5.0/24 02:4c:00:00:05:05 d0
    fd00:198:18:1::/64 02:4c:00:00:01:01
    """)

    /// Runs `frames` through one lane with `app`; returns what was sent and the counters.
    func push<App: LaneApp>(_ app: App, _ frames: [[UInt8]]) -> (sent: [[UInt8]], counters: LaneSnapshot, balanced: Bool) {
        let port = InMemoryPort(ringSize: 64, frameSize: 2048, frameCount: 256)
        var l = InMemoryLane(app: app, port: port, batch: 16)
        var sent: [[UInt8]] = []
        for f in frames {
            port.setTemplate(f)
            port.kernelReceive(1)
            _ = l.lane.step()
            port.kernelTransmit { sent.append(Array($0)) }
        }
        _ = l.lane.step()
        return (sent, l.counters, l.ledger.balanced)
    }

    @Test func l3RewritesAndCountsEveryDropCause() {
        let app = L3App(routes: Self.routes, outPort: "d1", source: Self.outMAC)
        var arp = [UInt8](repeating: 0, count: 60)
        arp[12] = 0x08; arp[13] = 0x06
        var badSum = Self.frame(dst: "198.18.1.9")
        badSum[24] ^= 0xff
        var badIHL = Self.frame(dst: "198.18.1.9")
        badIHL[14] = 0x43
        let frames: [[UInt8]] = [
            Self.frame(dst: "198.18.1.7"), Self.frame(dst: "198.18.1.8", ttl: 2), // forwarded
            Self.frame(dst: "fd00:198:18:1::5", v6: true, size: 100),            // forwarded (v6)
            Self.frame(dst: "198.18.1.7", ttl: 1), Self.frame(dst: "fd00:198:18:1::5", ttl: 1, v6: true, size: 100), // ttl
            Self.frame(dst: "198.18.9.9"), Self.frame(dst: "fd00:198:18:7::1", v6: true, size: 100),            // no route
            Self.frame(dst: "198.18.5.1"),                                      // route leaves by d0: not this port
            badSum, arp, badIHL,
        ]
        let (sent, c, balanced) = push(app, frames)
        #expect(sent.count == 3)
        #expect(c[.dropTTL] == 2)
        #expect(c[.dropNoRoute] == 3)
        #expect(c[.dropBadChecksum] == 1)
        #expect(c[.dropNonIP] == 1)
        #expect(c[.dropMalformed] == 1)
        #expect(c[.txPackets] == 3)
        #expect(balanced)
        for (i, pkt) in sent.enumerated() {
            #expect(Array(pkt[0..<6]) == Self.nextHop.array, "packet \(i): next hop MAC")
            #expect(Array(pkt[6..<12]) == Self.outMAC.array, "packet \(i): out port MAC")
            let r = pkt.withUnsafeBytes { PacketParser.parse($0, verifyChecksums: true) }
            #expect(r.stop == nil)
            #expect(r.ipv4ChecksumValid != false, "packet \(i): the incremental update broke the checksum")
            #expect(r.l4ChecksumValid == true)
            #expect(r.ttl == (i == 1 ? 1 : 63))
        }
    }

    /// Lengths that claim more than the frame holds are malformed, not forwarded: an IPv4
    /// total length past the frame (header checksum valid), IHL 4, an IPv6 payload length
    /// past the frame. A frame with Ethernet padding after the packet still goes.
    @Test func l3DropsLengthsPastTheFrameAsMalformed() {
        let app = L3App(routes: Self.routes, outPort: "d1", source: Self.outMAC)
        func withIPv4Header(_ f: [UInt8], _ edit: (inout [UInt8]) -> Void) -> [UInt8] {
            var b = f
            edit(&b)
            b[24] = 0; b[25] = 0
            let sum = b.withUnsafeBytes { ~Checksum.fold(Checksum.sum($0.baseAddress! + 14, count: Int(b[14] & 15) * 4)) }
            b[24] = UInt8(sum >> 8); b[25] = UInt8(sum & 0xff)
            return b
        }
        let long = withIPv4Header(Self.frame(dst: "198.18.1.7", size: 62)) { $0[16] = 0; $0[17] = 200 }
        let ihl4 = withIPv4Header(Self.frame(dst: "198.18.1.7")) { $0[14] = 0x44 }
        var v6long = Self.frame(dst: "fd00:198:18:1::5", v6: true, size: 100)
        v6long[18] = 0x01; v6long[19] = 0xf4 // 500
        let padded = withIPv4Header(Self.frame(dst: "198.18.1.7", size: 80)) { $0[16] = 0; $0[17] = 46 } // 60 bytes of packet, 20 of padding
        let (sent, c, balanced) = push(app, [long, ihl4, v6long, padded])
        #expect(c[.dropMalformed] == 3)
        #expect(c[.dropBadChecksum] == 0)
        #expect(sent.count == 1 && balanced)
        #expect(sent.first?.count == 14 + 46, "a router forwards the IP packet, not the frame's padding")
    }

    /// `--routes kernel`: the XDP program has chosen the route and written the MACs,
    /// so the lane leaves them as they are, decrements TTL or hop limit with the
    /// kernel's checksum update, trims padding, and drops by cause.
    @Test func l3ByTheKernelsFIBDecrementsAndKeepsTheMACs() {
        var badSum = Self.frame(dst: "198.18.1.9")
        badSum[24] ^= 0xff
        var arp = [UInt8](repeating: 0, count: 60)
        arp[12] = 0x08; arp[13] = 0x06
        let v4 = Self.frame(dst: "198.18.1.7"), v6 = Self.frame(dst: "fd00:198:18:1::5", v6: true, size: 100)
        let (sent, c, balanced) = push(L3FIBApp(), [v4, v6, Self.frame(dst: "198.18.1.7", ttl: 1), badSum, arp])
        #expect(sent.count == 2 && balanced)
        #expect(c[.dropTTL] == 1 && c[.dropBadChecksum] == 1 && c[.dropNonIP] == 1)
        for (pkt, orig) in zip(sent, [v4, v6]) {
            #expect(Array(pkt[0..<12]) == Array(orig[0..<12]), "the MACs are the FIB's, written in XDP")
            let r = pkt.withUnsafeBytes { PacketParser.parse($0, verifyChecksums: true) }
            #expect(r.ipv4ChecksumValid != false && r.l4ChecksumValid == true && r.ttl == 63)
        }
    }

    @Test func l2AndIORewriteOnlyWhatTheySay() {
        let f = Self.frame(dst: "198.18.1.7")
        let (l2, c2, b2) = push(L2App(nextHop: Self.nextHop, source: Self.outMAC), [f, f])
        #expect(l2.count == 2 && b2 && c2.drops == 0)
        #expect(Array(l2[0][0..<6]) == Self.nextHop.array && Array(l2[0][6..<12]) == Self.outMAC.array)
        #expect(Array(l2[0][12...]) == Array(f[12...]))
        let (io, _, bio) = push(IOApp(), [f])
        #expect(io == [f] && bio)
    }
}
