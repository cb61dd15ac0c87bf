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

    @Test func poolIsFIFOAndWraps() {
        var pool = FramePool(frameCount: 6, frameSize: 4096, first: 2)
        #expect(pool.pop() == 2 * 4096)
        #expect(pool.pop() == 3 * 4096)
        pool.push(2 * 4096)
        for _ in 0..<1000 { pool.push(pool.pop()) }
        #expect(pool.count == 5)
        var seen = Set<UInt64>()
        while !pool.isEmpty { seen.insert(pool.pop()) }
        #expect(seen == Set([2, 4, 5, 6, 7].map { UInt64($0 * 4096) }))
    }

    @Test func popNewestIsLIFOAndMixesWithFIFO() {
        var pool = FramePool(frameCount: 4, frameSize: 2048)
        #expect(pool.popNewest() == 3 * 2048)
        pool.push(9 * 2048)
        #expect(pool.popNewest() == 9 * 2048)
        #expect(pool.pop() == 0)
        #expect(pool.popNewest() == 2 * 2048)
        #expect(pool.count == 1)
        // Wrapping the free-running indices both ways keeps every frame.
        for i in 0..<1000 { pool.push(UInt64(i)); _ = i % 2 == 0 ? pool.popNewest() : pool.pop() }
        #expect(pool.count == 1)
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

@Suite struct TrafficSpecTests {
    @Test func rates() {
        #expect(Rate.parse("50000") == .pps(50000))
        #expect(Rate.parse("50kpps") == .pps(50000))
        #expect(Rate.parse("2Mpps") == .pps(2e6))
        #expect(Rate.parse("500Mbps") == .bps(5e8))
        #expect(Rate.parse("1Gbps") == .bps(1e9))
        #expect(Rate.parse("0") == nil)
        #expect(Rate.parse("fast") == nil)
        #expect(Rate.parse("-5kpps") == nil)
        #expect(Rate.bps(1e9).packetsPerSecond(meanFrameBytes: 125) == 1e6)
    }

    @Test func sizesAndIMIX() {
        #expect(FrameSizes.parseList("64,128", minimum: 60, maximum: 1518) == [64, 128])
        #expect(FrameSizes.parseList("32", minimum: 60, maximum: 1518) == nil)
        let mix = FrameSizes.parseIMIX("64:7,570:4,1518:1", minimum: 60, maximum: 1518)!
        let p = FrameSizes.pattern(mix)
        #expect(p.count == 12)
        #expect(p.filter { $0 == 64 }.count == 7 && p.filter { $0 == 570 }.count == 4 && p.filter { $0 == 1518 }.count == 1)
        #expect(FrameSizes.parseIMIX("64:x", minimum: 60, maximum: 1518) == nil)
    }

    @Test func histogramPercentilesAreMonotoneAndClose() {
        var h = LatencyHistogram()
        for v in 1...100_000 { h.record(UInt64(v)) }
        var last: UInt64 = 0
        for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] {
            let p = h.percentile(q)
            #expect(p >= last)
            last = p
        }
        let p50 = Double(h.percentile(0.5))
        #expect(abs(p50 - 50_000) / 50_000 < 0.04)
        #expect(h.percentile(1.0) == 100_000)
        #expect(h.min == 1 && h.count == 100_000)
        for i in 0..<LatencyHistogram.bucketCount - 1 { #expect(LatencyHistogram.index(LatencyHistogram.lowerBound(i)) == i) }
    }

    /// The XDP receiver's buckets (same layout) added to a histogram give the same
    /// percentiles as recording the values here.
    @Test func bucketsFromElsewhereAddUpLikeRecordedValues() {
        var recorded = LatencyHistogram(), merged = LatencyHistogram()
        var buckets = [UInt64](repeating: 0, count: LatencyHistogram.bucketCount)
        var sum: UInt64 = 0
        let values: [UInt64] = (0..<5000).map { UInt64($0) * 7919 % 3_000_000 + 13 }
        for v in values { recorded.record(v); buckets[LatencyHistogram.index(v)] += 1; sum += v }
        merged.add(buckets: buckets, count: UInt64(values.count), min: values.min()!, max: values.max()!, sum: Double(sum))
        for q in [0.0, 0.5, 0.9, 0.99, 0.999, 1.0] { #expect(merged.percentile(q) == recorded.percentile(q)) }
        #expect(merged.count == recorded.count && merged.min == recorded.min && merged.max == recorded.max)
        var empty = LatencyHistogram()
        empty.add(buckets: [UInt64](repeating: 0, count: LatencyHistogram.bucketCount), count: 0, min: .max, max: 0, sum: 0)
        #expect(empty.count == 0 && empty.percentile(0.5) == 0)
    }
}
