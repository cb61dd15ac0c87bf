import Testing
@testable import LanesCore

@Suite struct LaneFilterTests {
    @Test func defaultsToAllIP() throws {
        let f = try LaneFilter(parsing: "ip")
        #expect(f == .all)
        #expect(f.protocols == .ip)
        #expect(f.transport == 0)
        #expect(f.destinationPorts == nil)
    }

    @Test(arguments: [
        ("ipv4", LaneFilter(protocols: .ipv4)),
        ("ipv6", LaneFilter(protocols: .ipv6)),
        ("udp", LaneFilter(transport: 17)),
        ("tcp", LaneFilter(transport: 6)),
        ("udp dport 9000", LaneFilter(transport: 17, destinationPorts: 9000...9000)),
        ("udp dport 9000-9999", LaneFilter(transport: 17, destinationPorts: 9000...9999)),
        ("TCP DPORT 80", LaneFilter(transport: 6, destinationPorts: 80...80)),
        ("ipv6 udp dport 53", LaneFilter(protocols: .ipv6, transport: 17, destinationPorts: 53...53)),
    ])
    func parses(text: String, expected: LaneFilter) throws {
        #expect(try LaneFilter(parsing: text) == expected)
    }

    @Test(arguments: ["", "icmp", "udp dport", "udp dport 0", "udp dport 10-5", "udp dport 70000",
                      "ip dport 80", "udp sport 80", "udp dport 80 extra", "udp dport a-b"])
    func rejects(text: String) {
        #expect(throws: LaneFilter.ParseError.self) { try LaneFilter(parsing: text) }
    }

    @Test func roundTripsThroughDescription() throws {
        for text in ["ip", "ipv4", "ipv6", "udp", "tcp dport 80-90", "ipv6 udp dport 53"] {
            let f = try LaneFilter(parsing: text)
            #expect(try LaneFilter(parsing: f.description) == f, "\(text) -> \(f.description)")
        }
    }

    @Test func indexLists() {
        #expect(IndexList.parse("0-3") == [0, 1, 2, 3])
        #expect(IndexList.parse("1,2,4") == [1, 2, 4])
        #expect(IndexList.parse("0,2-3") == [0, 2, 3])
        #expect(IndexList.parse("") == nil)
        #expect(IndexList.parse("3-1") == nil)
        #expect(IndexList.parse("a") == nil)
        #expect(IndexList.parse("-1") == nil)
        #expect(PortRange.parse("1-65535") == 1...65535)
        #expect(PortRange.parse("0") == nil)
    }
}

@Suite struct FrameTests {
    @Test func poolHandsOutEveryFrameOnce() {
        var pool = FramePool(frameCount: 64, frameSize: 2048)
        #expect(pool.count == 64)
        var seen = Set<UInt64>()
        while !pool.isEmpty { seen.insert(pool.pop()) }
        #expect(seen.count == 64)
        #expect(seen == Set((0..<64).map { UInt64($0 * 2048) }))
        for a in seen { pool.push(a) }
        #expect(pool.count == 64)
    }

    @Test func poolIsLIFO() {
        var pool = FramePool(frameCount: 8, frameSize: 4096)
        let a = pool.pop(), b = pool.pop()
        pool.push(b)
        pool.push(a)
        #expect(pool.pop() == a)
        #expect(pool.pop() == b)
    }

    @Test func ledgerBalancesAndFindsLoss() {
        var l = FrameLedger(total: 4096, free: 2000, fillRing: 2048, rxRing: 16, inHands: 0, txRing: 30, completionRing: 2)
        #expect(l.balanced)
        #expect(l.inFlight == 0)
        l.free -= 3
        #expect(!l.balanced)
        #expect(l.inFlight == 3)
        #expect(l.description.contains("MISSING 3"))
    }

    @Test func counterNamesAreUniqueAndFitTheBlock() {
        let names = LaneCounter.allCases.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(LaneCounter.allCases.count <= LaneCounter.slots)
        #expect(LaneCounter.dropTTL.isDrop && !LaneCounter.rxPackets.isDrop)
    }
}
