import Testing
@testable import LanesPacket

@Suite struct LPMTests {
    func brute4(_ routes: [(UInt32, Int)], _ a: UInt32) -> Int? {
        var best: (Int, Int)? = nil
        for (i, (p, l)) in routes.enumerated() {
            let m: UInt32 = l == 0 ? 0 : ~UInt32(0) << (32 - UInt32(l))
            if a & m == p & m, best == nil || l >= best!.1 { best = (i, l) }
        }
        return best?.0
    }

    @Test func ipv4MatchesBruteForceOnRandomTables() {
        var rng = SplitMix(seed: 11)
        for _ in 0..<5 {
            let t = LPMTable(bits: 32)
            var routes: [(UInt32, Int)] = []
            for i in 0..<400 {
                let len = Int(rng.next() % 33)
                // Cluster prefixes so that many overlap.
                let p = UInt32(truncatingIfNeeded: rng.next()) & 0xff0f_ffff | 0x0a00_0000
                routes.append((p, len))
                t.insert(key: [UInt8(p >> 24), UInt8(p >> 16 & 255), UInt8(p >> 8 & 255), UInt8(p & 255)], length: len, hop: i)
            }
            t.freeze()
            for _ in 0..<20000 {
                let a = UInt32(truncatingIfNeeded: rng.next()) & 0xff0f_ffff | (rng.next() % 2 == 0 ? 0x0a00_0000 : 0)
                #expect(t.lookup(v4: a) == brute4(routes, a), "address \(IPv4Address(a))")
            }
        }
    }

    @Test func ipv6MatchesBruteForceOnRandomTables() {
        var rng = SplitMix(seed: 12)
        let t = LPMTable(bits: 128)
        var routes: [(IPv6Address, Int)] = []
        func matches(_ a: IPv6Address, _ p: IPv6Address, _ l: Int) -> Bool {
            let mh: UInt64 = l == 0 ? 0 : l >= 64 ? ~0 : ~UInt64(0) << (64 - UInt64(l))
            let ml: UInt64 = l <= 64 ? 0 : l == 128 ? ~0 : ~UInt64(0) << (128 - UInt64(l))
            return a.high & mh == p.high & mh && a.low & ml == p.low & ml
        }
        for i in 0..<300 {
            let len = Int(rng.next() % 129)
            let p = IPv6Address(high: 0xfd00_0000_0000_0000 | (rng.next() & 0x0000_00ff_ff00_ffff), low: rng.next() & 0xffff_0000_0000_00ff)
            routes.append((p, len))
            t.insert(key: p.bytes, length: len, hop: i)
        }
        t.freeze()
        for _ in 0..<5000 {
            let base = routes[Int(rng.next() % UInt64(routes.count))].0
            let a = IPv6Address(high: base.high ^ (rng.next() & 0xff), low: base.low ^ (rng.next() & 0xffff))
            var best: (Int, Int)? = nil
            for (i, (p, l)) in routes.enumerated() where matches(a, p, l) && (best == nil || l >= best!.1) { best = (i, l) }
            #expect(t.lookup(v6: a) == best?.0, "address \(a)")
        }
    }

    @Test func routeFileParses() throws {
        let t = try RouteTable(parsing: """
        # prefix          next hop           port
        198.18.1.0/24     02:4c:00:00:01:01  d1
        198.18.0.0/15     02:4c:00:00:01:09
        fd00:198:18:1::/64 02:4c:00:00:01:01 d1
        0.0.0.0/0         02:4c:00:00:00:ff
        """)
        #expect(t.routes.count == 4)
        #expect(t.v4.lookup(v4: IPv4Address("198.18.1.7")!.value) == 0)
        #expect(t.v4.lookup(v4: IPv4Address("198.19.3.7")!.value) == 1)
        #expect(t.v4.lookup(v4: IPv4Address("10.0.0.1")!.value) == 3)
        #expect(t.v6.lookup(v6: IPv6Address("fd00:198:18:1::42")!) == 2)
        #expect(t.v6.lookup(v6: IPv6Address("fd00:198:18:2::1")!) == nil)
        #expect(throws: RouteTable.ParseError.badLine(1, "198.18.1.0/33 02:4c:00:00:01:01")) { try RouteTable(parsing: "198.18.1.0/33 02:4c:00:00:01:01") }
        #expect(throws: RouteTable.ParseError.badLine(2, "10.0.0.0/8 nomac")) { try RouteTable(parsing: "# x\n10.0.0.0/8 nomac") }
        #expect(throws: RouteTable.ParseError.empty) { try RouteTable(parsing: "# nothing\n") }
    }
}
