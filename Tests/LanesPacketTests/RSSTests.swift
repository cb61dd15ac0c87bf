import Testing
@testable import LanesPacket

/// Microsoft's RSS verification suite ("Verifying the RSS Hash Calculation"),
/// with its default key: IPv4/IPv6 with and without ports.
@Suite struct ToeplitzTests {
    struct Vector: Sendable, CustomTestStringConvertible {
        var dst: String, dstPort: UInt16, src: String, srcPort: UInt16
        var ipOnly: UInt32, withPorts: UInt32
        var testDescription: String { "\(src) -> \(dst)" }
    }

    static let vectors: [Vector] = [
        .init(dst: "161.142.100.80", dstPort: 1766, src: "66.9.149.187", srcPort: 2794, ipOnly: 0x323e_8fc2, withPorts: 0x51cc_c178),
        .init(dst: "65.69.140.83", dstPort: 4739, src: "199.92.111.2", srcPort: 14230, ipOnly: 0xd718_262a, withPorts: 0xc626_b0ea),
        .init(dst: "12.22.207.184", dstPort: 38024, src: "24.19.198.95", srcPort: 12898, ipOnly: 0xd2d0_a5de, withPorts: 0x5c2b_394a),
        .init(dst: "209.142.163.6", dstPort: 2217, src: "38.27.205.30", srcPort: 48228, ipOnly: 0x8298_9176, withPorts: 0xafc7_327f),
        .init(dst: "202.188.127.2", dstPort: 1303, src: "153.39.163.191", srcPort: 44251, ipOnly: 0x5d18_09c5, withPorts: 0x10e8_28a2),
        .init(dst: "3ffe:2501:200:3::1", dstPort: 1766, src: "3ffe:2501:200:1fff::7", srcPort: 2794, ipOnly: 0x2cc1_8cd5, withPorts: 0x4020_7d3d),
        .init(dst: "ff02::1", dstPort: 4739, src: "3ffe:501:8::260:97ff:fe40:efab", srcPort: 14230, ipOnly: 0x0f0c_461c, withPorts: 0xdde5_1bbf),
        .init(dst: "fe80::200:f8ff:fe21:67cf", dstPort: 38024, src: "3ffe:1900:4545:3:200:f8ff:fe21:67cf", srcPort: 44251, ipOnly: 0x4b61_e985, withPorts: 0x02d1_feef),
    ]

    @Test(arguments: vectors)
    func microsoftVectors(_ v: Vector) throws {
        let flow = FlowKey(src: try #require(IPAddress(v.src)), dst: try #require(IPAddress(v.dst)), srcPort: v.srcPort, dstPort: v.dstPort, proto: 6)
        let t = Toeplitz()
        #expect(t.hash(flow, withPorts: false) == v.ipOnly)
        #expect(t.hash(flow, withPorts: true) == v.withPorts)
    }

    @Test func indirectionAndPlanner() throws {
        let table = RSSTable(queues: 4)
        #expect(table.indirection.count == 128)
        #expect(table.queue(forHash: 5) == 1)
        let template = FlowKey(src: .v4(IPv4Address("198.18.0.1")!), dst: .v4(IPv4Address("198.18.1.1")!), srcPort: 1024, dstPort: 9000)
        let plan = try #require(FlowPlanner.plan(table: table, queues: 4, perQueue: 3, template: template))
        #expect(plan.count == 12)
        #expect(Set(plan.map(\.flow)).count == 12)
        for q in 0..<4 { #expect(plan.filter { $0.queue == q }.count == 3) }
        for f in plan { #expect(table.queue(for: f.flow) == f.queue) }
        // The first N flows of the list cover N queues.
        #expect(Set(plan.prefix(4).map(\.queue)) == [0, 1, 2, 3])
    }

    @Test func plannerRespectsADriverTable() throws {
        // A table that never names queue 3: the planner says it cannot.
        let table = RSSTable(indirection: (0..<128).map { UInt32($0 % 3) })
        let template = FlowKey(src: .v4(IPv4Address("198.18.0.1")!), dst: .v4(IPv4Address("198.18.1.1")!), srcPort: 1024, dstPort: 9000)
        #expect(FlowPlanner.plan(table: table, queues: 4, perQueue: 1, template: template, maxTries: 10_000) == nil)
        #expect(FlowPlanner.plan(table: table, queues: 3, perQueue: 2, template: template) != nil)
    }
}

@Suite struct AddressTests {
    @Test func ipv6TextRoundTrips() throws {
        for s in ["::", "::1", "fe80::1", "2001:db8::8:800:200c:417a", "ff02::1", "1:2:3:4:5:6:7:8", "fd00:198:18::2", "1::"] {
            let a = try #require(IPv6Address(s), "\(s)")
            #expect(a.description == s)
        }
        #expect(IPv6Address("1:2:3:4:5:6:7:8:9") == nil)
        #expect(IPv6Address("1::2::3") == nil)
        #expect(IPv6Address("12345::") == nil)
        #expect(IPv6Address("fe80::0:0:0:0:1")?.description == "fe80::1")
    }

    @Test func ipv4AndMAC() {
        #expect(IPv4Address("198.18.0.1")?.value == 0xc612_0001)
        #expect(IPv4Address("256.1.1.1") == nil)
        #expect(IPv4Address("1.2.3") == nil)
        #expect(MACAddress("02:4c:00:00:00:01")?.description == "02:4c:00:00:00:01")
        #expect(MACAddress("02:4c:00:00:00") == nil)
        #expect(MACAddress("zz:4c:00:00:00:01") == nil)
    }
}
