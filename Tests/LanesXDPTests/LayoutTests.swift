import CLanes
import LanesCore
@testable import LanesXDP
import Testing

/// The structs the XDP programs share with Swift (bpf/lanes_shared.h) as Swift
/// imports them: the size and every offset the program reads, the same numbers
/// the header's static asserts hold clang -target bpf to. And the constants
/// Swift spells again as enum cases, against the header's.
@Suite struct LayoutTests {
    @Test func lanesConfigAsTheProgramReadsIt() {
        #expect(MemoryLayout<lanes_config>.size == 72)
        let offsets: [(String, Int?, Int)] = [
            ("magic", MemoryLayout<lanes_config>.offset(of: \.magic), 0),
            ("action", MemoryLayout<lanes_config>.offset(of: \.action), 4),
            ("proto_mask", MemoryLayout<lanes_config>.offset(of: \.proto_mask), 8),
            ("l4", MemoryLayout<lanes_config>.offset(of: \.l4), 12),
            ("dport_lo", MemoryLayout<lanes_config>.offset(of: \.dport_lo), 16),
            ("dport_hi", MemoryLayout<lanes_config>.offset(of: \.dport_hi), 18),
            ("streams", MemoryLayout<lanes_config>.offset(of: \.streams), 20),
            ("flow_cap_bps", MemoryLayout<lanes_config>.offset(of: \.flow_cap_bps), 24),
            ("flow_burst_bytes", MemoryLayout<lanes_config>.offset(of: \.flow_burst_bytes), 32),
            ("fib_egress", MemoryLayout<lanes_config>.offset(of: \.fib_egress), 40),
            ("fib_flags", MemoryLayout<lanes_config>.offset(of: \.fib_flags), 44),
            ("mac", MemoryLayout<lanes_config>.offset(of: \.mac), 48),
            ("xdp_fwd", MemoryLayout<lanes_config>.offset(of: \.xdp_fwd), 56),
            ("next_hop", MemoryLayout<lanes_config>.offset(of: \.next_hop), 60),
            ("src_mac", MemoryLayout<lanes_config>.offset(of: \.src_mac), 66),
        ]
        for (name, got, want) in offsets { #expect(got == want, "lanes_config.\(name)") }
    }

    @Test func lanesQstatsIsEighteenCountersInOrder() {
        #expect(MemoryLayout<lanes_qstats>.size == 18 * 8)
        let order: [(String, Int?)] = [
            ("redirected", MemoryLayout<lanes_qstats>.offset(of: \.redirected)), ("passed", MemoryLayout<lanes_qstats>.offset(of: \.passed)),
            ("dropped", MemoryLayout<lanes_qstats>.offset(of: \.dropped)), ("matched_bytes", MemoryLayout<lanes_qstats>.offset(of: \.matched_bytes)),
            ("policed", MemoryLayout<lanes_qstats>.offset(of: \.policed)), ("unresolved", MemoryLayout<lanes_qstats>.offset(of: \.unresolved)),
            ("blackhole", MemoryLayout<lanes_qstats>.offset(of: \.blackhole)), ("unreachable", MemoryLayout<lanes_qstats>.offset(of: \.unreachable)),
            ("ttl_expired", MemoryLayout<lanes_qstats>.offset(of: \.ttl_expired)), ("too_big", MemoryLayout<lanes_qstats>.offset(of: \.too_big)),
            ("too_big_dropped", MemoryLayout<lanes_qstats>.offset(of: \.too_big_dropped)), ("not_forwarded", MemoryLayout<lanes_qstats>.offset(of: \.not_forwarded)),
            ("other_port", MemoryLayout<lanes_qstats>.offset(of: \.other_port)), ("matched", MemoryLayout<lanes_qstats>.offset(of: \.matched)),
            ("forwarded", MemoryLayout<lanes_qstats>.offset(of: \.forwarded)), ("forwarded_bytes", MemoryLayout<lanes_qstats>.offset(of: \.forwarded_bytes)),
            ("no_route", MemoryLayout<lanes_qstats>.offset(of: \.no_route)), ("bad_header", MemoryLayout<lanes_qstats>.offset(of: \.bad_header)),
        ]
        for (i, (name, got)) in order.enumerated() { #expect(got == i * 8, "lanes_qstats.\(name)") }
        // Each counter lands in its own field (a swap in the Swift mapping would show here).
        var q = lanes_qstats()
        withUnsafeMutableBytes(of: &q) { raw in for i in 0..<18 { raw.storeBytes(of: UInt64(i + 1), toByteOffset: i * 8, as: UInt64.self) } }
        let c = XDPQueueCounters(q)
        #expect([c.redirected, c.passed, c.dropped, c.matchedBytes, c.policed, c.unresolved, c.blackhole, c.unreachable, c.ttlExpired,
                 c.tooBig, c.tooBigDropped, c.notForwarded, c.otherPort, c.matched, c.forwarded, c.forwardedBytes, c.noRoute, c.badHeader]
                == (1...18).map(UInt64.init))
    }

    @Test func routeKeysAndNextHops() {
        #expect(MemoryLayout<lanes_lpm4>.size == 8 && MemoryLayout<lanes_lpm4>.offset(of: \.addr) == 4)
        #expect(MemoryLayout<lanes_lpm6>.size == 20 && MemoryLayout<lanes_lpm6>.offset(of: \.addr) == 4)
        #expect(MemoryLayout<lanes_next_hop>.size == 8 && MemoryLayout<lanes_next_hop>.offset(of: \.usable) == 6)
    }

    /// The signed receiver's per-stream counts and totals, and a stream's first
    /// flow read back from the struct as the program writes it.
    @Test func signedReceiveCounts() {
        #expect(MemoryLayout<lanes_stream_rx>.size == 14 * 8)
        let flow = MemoryLayout<lanes_stream_rx>.offset(of: \.saddr)
        #expect(flow == 64)
        #expect(MemoryLayout<lanes_stream_rx>.offset(of: \.daddr) == 80 && MemoryLayout<lanes_stream_rx>.offset(of: \.sport) == 96
                && MemoryLayout<lanes_stream_rx>.offset(of: \.dport) == 98 && MemoryLayout<lanes_stream_rx>.offset(of: \.family) == 100
                && MemoryLayout<lanes_stream_rx>.offset(of: \.proto) == 101 && MemoryLayout<lanes_stream_rx>.offset(of: \.queue) == 104)
        #expect(MemoryLayout<lanes_rx_totals>.size == 7 * 8 && MemoryLayout<lanes_rx_totals>.offset(of: \.overflow_packets) == 48)
        var s = lanes_stream_rx()
        s.family = 4; s.proto = 17; s.sport = 1234; s.dport = 9000; s.queue = 3
        s.saddr.0 = UInt32(0xc612_0001).bigEndian; s.daddr.0 = UInt32(0xc612_0102).bigEndian // network order, as in the packet
        let f = XDPProgram.streamFlow(s)
        #expect(f?.0.description == "udp 198.18.0.1:1234 -> 198.18.1.2:9000" && f?.1 == 3, "\(f.map { "\($0.0)" } ?? "none")")
        #expect(XDPProgram.streamFlow(lanes_stream_rx()) == nil)
    }

    /// The live-frames program's slots (written whole) and lanes (an mmapped array
    /// of them, fields stored and loaded at these offsets).
    @Test func liveFramesSlotsAndLanes() {
        #expect(MemoryLayout<lanes_gen_slot>.size == 144 && MemoryLayout<lanes_gen_slot>.offset(of: \.stream) == 128
                && MemoryLayout<lanes_gen_slot>.offset(of: \.length) == 132 && MemoryLayout<lanes_gen_slot>.offset(of: \.sig) == 134
                && MemoryLayout<lanes_gen_slot>.offset(of: \.csum) == 136)
        #expect(LiveFramesProgram.laneBytes == 56 && LiveFramesProgram.templateBytes == 128 && LiveFramesProgram.maxCPUs == 1024)
        let fields: [(String, PartialKeyPath<lanes_gen_lane>, Int)] = [
            ("first_slot", \.first_slot, 0), ("slots", \.slots, 4), ("next", \.next, 8), ("ifindex", \.ifindex, 12), ("sent", \.sent, 16),
            ("limit", \.limit, 24), ("bytes", \.bytes, 32), ("short_frames", \.short_frames, 40), ("source_ifindex", \.source_ifindex, 48),
        ]
        for (name, path, want) in fields { #expect(LiveFramesProgram.at(path) == want, "lanes_gen_lane.\(name)") }
    }

    @Test func constantsSpelledInSwiftMatchTheHeader() {
        #expect(XDPProgram.magic == 0x4c41_4e45 && XDPProgram.maxQueues == 256)
        let actions: [(XDPAction, lanes_action)] = [(.redirect, LANES_REDIRECT), (.sink, LANES_SINK), (.countAndPass, LANES_COUNT_PASS),
                                                    (.signedReceive, LANES_SIGNED_RX), (.forwardByFIB, LANES_FORWARD_FIB), (.forwardInXDP, LANES_FORWARD_XDP)]
        for (a, c) in actions { #expect(a.rawValue == c.rawValue, "\(a)") }
        #expect(LaneFilter.Protocols.ipv4.rawValue == LANES_IPV4.rawValue && LaneFilter.Protocols.ipv6.rawValue == LANES_IPV6.rawValue)
    }
}
