import Foundation
import Testing
@testable import LanesPacket

let macA = MACAddress("02:00:00:00:00:0a")!, macB = MACAddress("02:00:00:00:00:0b")!

func build(_ spec: FrameSpec) -> [UInt8] {
    var buf = [UInt8](repeating: 0, count: spec.frameLength)
    let ok = buf.withUnsafeMutableBytes { FrameBuilder.build(spec, into: $0.baseAddress!, fill: 0xab) }
    precondition(ok != nil)
    return buf
}

func parse(_ b: [UInt8], verify: Bool = true) -> ParsedPacket { b.withUnsafeBytes { PacketParser.parse($0, verifyChecksums: verify) } }

func v4(_ s: String) -> IPAddress { .v4(IPv4Address(s)!) }
func v6(_ s: String) -> IPAddress { .v6(IPv6Address(s)!) }

@Suite struct BuildAndParseTests {
    @Test(arguments: [(17 as UInt8, false), (6, false), (17, true), (6, true)])
    func builtFramesParseWithValidChecksums(transport: UInt8, ipv6: Bool) {
        for size in [64, 65, 128, 570, 1518] {
            var spec = FrameSpec(dstMAC: macB, srcMAC: macA, src: ipv6 ? v6("fd00::1") : v4("198.18.0.1"),
                                 dst: ipv6 ? v6("fd00::2") : v4("198.18.1.1"), transport: transport,
                                 srcPort: 1234, dstPort: 9000, frameLength: max(size, ipv6 ? 86 : 66))
            spec.ttl = 17
            let b = build(spec)
            let r = parse(b)
            #expect(r.stop == nil, "\(r.stop!)")
            #expect(r.layers.contains(ipv6 ? .ipv6 : .ipv4))
            #expect(r.layers.contains(transport == 6 ? .tcp : .udp))
            #expect(r.srcPort == 1234 && r.dstPort == 9000)
            #expect(r.ttl == 17)
            #expect(r.ipLength == spec.frameLength - 14)
            if !ipv6 { #expect(r.ipv4ChecksumValid == true) }
            #expect(r.l4ChecksumValid == true)
            #expect(r.payloadOffset + r.payloadLength == spec.frameLength)
        }
    }

    @Test func vlanTaggedFrame() {
        var spec = FrameSpec(dstMAC: macB, srcMAC: macA, src: v4("198.18.0.1"), dst: v4("198.18.1.1"), srcPort: 1, dstPort: 2, frameLength: 80)
        spec.vlan = 42
        let r = parse(build(spec))
        #expect(r.vlanCount == 1 && r.vlanIDs.0 == 42)
        #expect(r.layers.contains(.vlan) && r.layers.contains(.udp))
        #expect(r.l4ChecksumValid == true)
    }

    @Test func rejectsImpossibleLengths() {
        let spec = FrameSpec(dstMAC: macB, srcMAC: macA, src: v4("198.18.0.1"), dst: v4("198.18.1.1"), srcPort: 1, dstPort: 2, frameLength: 30)
        var buf = [UInt8](repeating: 0, count: 64)
        #expect(buf.withUnsafeMutableBytes { FrameBuilder.build(spec, into: $0.baseAddress!) } == nil)
        let mixed = FrameSpec(dstMAC: macB, srcMAC: macA, src: v4("198.18.0.1"), dst: v6("fd00::1"), srcPort: 1, dstPort: 2, frameLength: 64)
        #expect(buf.withUnsafeMutableBytes { FrameBuilder.build(mixed, into: $0.baseAddress!) } == nil)
    }
}

@Suite struct MalformedTests {
    static func udp4() -> [UInt8] {
        build(FrameSpec(dstMAC: macB, srcMAC: macA, src: v4("198.18.0.1"), dst: v4("198.18.1.1"), srcPort: 1, dstPort: 2, frameLength: 64))
    }

    @Test func tooShortForEthernet() {
        #expect(parse([1, 2, 3]).stop == .truncatedEthernet)
        #expect(parse([]).stop == .truncatedEthernet)
    }

    @Test func wrongIHL() {
        var b = Self.udp4(); b[14] = 0x44
        #expect(parse(b).stop == .badIHL)
    }

    @Test func badVersion() {
        var b = Self.udp4(); b[14] = 0x55
        #expect(parse(b).stop == .badIPv4Version)
    }

    @Test func totalLengthPastFrame() {
        var b = Self.udp4(); b[16] = 0x05; b[17] = 0xdc
        let r = parse(b)
        #expect(r.stop == .ipv4TotalLengthPastFrame)
        #expect(r.stopOffset == 14)
        #expect(r.ipv4Src == 0xc612_0001) // the header itself was read
    }

    @Test func truncatedInsideIPv4() {
        let b = Array(Self.udp4().prefix(30))
        #expect(parse(b).stop == .truncatedIPv4)
    }

    @Test func extensionChainPastFrame() {
        var b = build(FrameSpec(dstMAC: macB, srcMAC: macA, src: v6("fd00::1"), dst: v6("fd00::2"), srcPort: 1, dstPort: 2, frameLength: 70))
        b[14 + 6] = 0 // next header: hop-by-hop, whose length byte claims 16 bytes more
        b[54 + 1] = 2
        #expect(parse(b).stop == .extensionChainPastFrame)
    }

    /// The TTL decrement's checksum is ip_decrease_ttl's: for every checksum and
    /// TTL the header still sums right, and the edge cases are the kernel's
    /// (a sum of zero stored as 0x0000).
    @Test func ttlDecrementChecksumIsTheKernels() {
        var header = [UInt8](repeating: 0, count: 20)
        header[0] = 0x45; header[9] = 17
        var wrong = 0
        for ttl in [2, 64, 255] as [UInt8] {
            for i in stride(from: 0, to: 65536, by: 7) {
                header[8] = ttl
                header[12] = UInt8(i >> 8); header[13] = UInt8(i & 0xff) // vary the sum through the source address
                header[10] = 0; header[11] = 0
                let ck = header.withUnsafeBytes { ~Checksum.fold(Checksum.sum($0.baseAddress!, count: 20)) }
                header[8] = ttl - 1
                let new = Checksum.afterTTLDecrement(ck)
                header[10] = UInt8(new >> 8); header[11] = UInt8(new & 0xff)
                if header.withUnsafeBytes({ Checksum.fold(Checksum.sum($0.baseAddress!, count: 20)) }) != 0xffff { wrong += 1 }
            }
        }
        #expect(wrong == 0)
        #expect(Checksum.afterTTLDecrement(0xfeff) == 0x0000)
        #expect(Checksum.afterTTLDecrement(0xff00) == 0x0001)
        #expect(Checksum.afterTTLDecrement(0x1234) == 0x1334)
    }

    @Test func badChecksumsAreReportedNotFatal() {
        var b = Self.udp4(); b[63] ^= 0xff
        let r = parse(b)
        #expect(r.stop == nil)
        #expect(r.l4ChecksumValid == false)
        b = Self.udp4(); b[22] ^= 1 // ttl, without fixing the header checksum
        #expect(parse(b).ipv4ChecksumValid == false)
    }

    /// Every truncation and many corruptions of real frames parse without trapping.
    @Test func noTrapOnMutations() {
        let seeds = [Self.udp4(),
                     build(FrameSpec(dstMAC: macB, srcMAC: macA, src: v6("fd00::1"), dst: v6("fd00::2"), transport: 6, srcPort: 1, dstPort: 2, frameLength: 100))]
        var rng = SplitMix(seed: 42)
        for seed in seeds {
            for cut in 0...seed.count { _ = parse(Array(seed.prefix(cut))) }
            for _ in 0..<20000 {
                var b = seed
                for _ in 0..<Int(rng.next() % 4 + 1) { b[Int(rng.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: rng.next()) }
                let r = parse(b)
                #expect(r.payloadOffset >= 0 && r.payloadOffset <= b.count)
            }
        }
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}

@Suite struct EditTests {
    func fullyRecomputedMatches(_ b: [UInt8]) -> Bool {
        let r = parse(b)
        return r.stop == nil && r.l4ChecksumValid != false && r.ipv4ChecksumValid != false
    }

    @Test func macSwap() {
        var b = MalformedTests.udp4()
        b.withUnsafeMutableBytes { EthernetEdit.swapAddresses($0.baseAddress!) }
        #expect(Array(b[0..<6]) == macA.array && Array(b[6..<12]) == macB.array)
    }

    @Test func ttlDecrementMatchesFullRecomputation() {
        for ttl in [2, 64, 255] as [UInt8] {
            var spec = FrameSpec(dstMAC: macB, srcMAC: macA, src: v4("198.18.0.1"), dst: v4("198.18.1.1"), srcPort: 1, dstPort: 2, frameLength: 64)
            spec.ttl = ttl
            var b = build(spec)
            let r = parse(b)
            let ok = b.withUnsafeMutableBytes { PacketEdit.decrementTTL($0.baseAddress!, r) }
            #expect(ok)
            spec.ttl = ttl - 1
            #expect(b == build(spec), "incremental update differs from a full rebuild at ttl \(ttl)")
        }
        var spec = FrameSpec(dstMAC: macB, srcMAC: macA, src: v6("fd00::1"), dst: v6("fd00::2"), srcPort: 1, dstPort: 2, frameLength: 90)
        spec.ttl = 1
        var b = build(spec)
        let r = parse(b)
        #expect(!b.withUnsafeMutableBytes { PacketEdit.decrementTTL($0.baseAddress!, r) })
    }

    @Test func addressAndPortRewriteMatchFullRecomputation() {
        var rng = SplitMix(seed: 7)
        for transport in [17, 6] as [UInt8] {
            for _ in 0..<500 {
                let s = UInt32(truncatingIfNeeded: rng.next()), d = UInt32(truncatingIfNeeded: rng.next())
                let sp = UInt16(truncatingIfNeeded: rng.next()), dp = UInt16(truncatingIfNeeded: rng.next())
                let len = 60 + Int(rng.next() % 200)
                let orig = FrameSpec(dstMAC: macB, srcMAC: macA, src: v4("198.18.0.1"), dst: v4("198.18.1.1"), transport: transport, srcPort: 1, dstPort: 2, frameLength: len)
                var b = build(orig)
                var r = parse(b)
                b.withUnsafeMutableBytes { p in
                    PacketEdit.rewriteIPv4(p.baseAddress!, &r, src: s, dst: d)
                    PacketEdit.rewritePorts(p.baseAddress!, &r, src: sp, dst: dp)
                }
                var want = orig
                want.src = .v4(IPv4Address(s)); want.dst = .v4(IPv4Address(d)); want.srcPort = sp; want.dstPort = dp
                let expected = build(want)
                #expect(b == expected)
                if b != expected { return }
            }
        }
    }

    @Test func incrementalUpdateMatchesRecomputationForRandomWords() {
        var rng = SplitMix(seed: 9)
        for _ in 0..<2000 {
            var words = (0..<10).map { _ in UInt16(truncatingIfNeeded: rng.next()) }
            func full() -> UInt16 {
                let bytes = words.flatMap { [UInt8($0 >> 8), UInt8($0 & 255)] }
                return bytes.withUnsafeBytes { Checksum.finish(Checksum.sum($0.baseAddress!, count: 20)) }
            }
            let before = full()
            let i = Int(rng.next() % 10)
            let old = words[i], new = UInt16(truncatingIfNeeded: rng.next())
            words[i] = new
            let inc = Checksum.update(before, old: old, new: new)
            let f = full()
            // 0x0000 and 0xffff are the same value in ones' complement.
            #expect(inc == f || (inc == 0xffff && f == 0) || (inc == 0 && f == 0xffff))
        }
    }
}

@Suite struct PcapTests {
    @Test func writeReadRoundTrip() throws {
        let recs = [PcapRecord(timestampNanos: 1_700_000_000_123_456_000, data: MalformedTests.udp4()),
                    PcapRecord(timestampNanos: 5_000, originalLength: 100, data: [1, 2, 3])]
        let file = Pcap.write(recs)
        #expect(file.count == 24 + 16 + 64 + 16 + 3)
        #expect(try Pcap.read(file) == recs)
    }

    /// Nanosecond pcap and pcapng keep nanoseconds; microsecond pcap rounds down;
    /// pcapng pads odd lengths and carries the queue; a snaplen cuts the data but
    /// keeps the original length; 9000-byte packets go through whole.
    @Test func nanosecondPcapAndPcapngRoundTrip() throws {
        let recs = [PcapRecord(timestampNanos: 1_700_000_000_123_456_789, data: MalformedTests.udp4()),
                    PcapRecord(timestampNanos: 1_700_000_001_000_000_001, data: [1, 2, 3]),
                    PcapRecord(timestampNanos: 1_700_000_002_000_000_000, data: [UInt8](repeating: 0x5a, count: 9000))]
        for format in [PcapFormat.pcapNanos, .pcapng] {
            #expect(try Pcap.read(Pcap.write(recs, format: format)) == recs, "\(format)")
        }
        let micro = try Pcap.read(Pcap.write(recs, format: .pcapMicros))
        #expect(micro.map(\.timestampNanos) == recs.map { $0.timestampNanos / 1000 * 1000 })
        var ng: [UInt8] = []
        Pcap.appendHeader(.pcapng, snaplen: 2, to: &ng)
        let header = ng.count
        [UInt8](arrayLiteral: 9, 8, 7).withUnsafeBytes { Pcap.appendRecord(.pcapng, timestampNanos: 5, originalLength: 3, data: $0, snaplen: 2, queue: 3, to: &ng) }
        // EPB: 28 bytes of fields, 2 data padded to 4, epb_queue (8), end of options (4), length (4).
        #expect(ng.count - header == 28 + 4 + 8 + 4 + 4)
        #expect(Array(ng[(header + 32)..<(header + 40)]) == [6, 0, 4, 0, 3, 0, 0, 0])
        #expect(try Pcap.read(ng) == [PcapRecord(timestampNanos: 5, originalLength: 3, data: [9, 8])])
        #expect(PcapFormat.forFileName("a.pcapng") == .pcapng && PcapFormat.forFileName("a.pcap") == .pcapNanos)
    }

    @Test func rejectsGarbage() {
        #expect(throws: PcapError.tooShort) { try Pcap.read([1, 2]) }
        #expect(throws: PcapError.self) { try Pcap.read([UInt8](repeating: 7, count: 40)) }
        var truncated = Pcap.write([PcapRecord(timestampNanos: 0, data: [1, 2, 3, 4])])
        truncated.removeLast()
        #expect(throws: PcapError.truncatedRecord(index: 0)) { try Pcap.read(truncated) }
    }

    /// A capture cut mid-record gives the records before the cut, and says where.
    @Test func cutCaptureKeepsTheRecordsBefore() throws {
        let recs = (0..<3).map { PcapRecord(timestampNanos: UInt64($0) * 1000, data: MalformedTests.udp4()) }
        var file = Pcap.write(recs)
        file.removeLast(10)
        let r = try Pcap.readPrefix(file)
        #expect(r.records == Array(recs.prefix(2)))
        #expect(r.cut == .truncatedRecord(index: 2))
        file.removeLast(64 + 16 - 10 - 4) // into the third record's header
        #expect(try Pcap.readPrefix(file).records.count == 2)
        #expect(throws: PcapError.truncatedRecord(index: 2)) { try Pcap.read(file) }
        #expect(throws: PcapError.self) { try Pcap.readPrefix([UInt8](repeating: 7, count: 40)) }
    }

    @Test func readsPcapNG() throws {
        var f: [UInt8] = []
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { f.append(contentsOf: $0) } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { f.append(contentsOf: $0) } }
        u32(0x0a0d_0d0a); u32(28); u32(0x1a2b_3c4d); u16(1); u16(0); u32(0xffff_ffff); u32(0xffff_ffff); u32(28)
        u32(1); u32(20); u16(1); u16(0); u32(65535); u32(20)
        let pkt: [UInt8] = [9, 8, 7, 6, 5]
        u32(6); u32(32 + 8); u32(0); u32(0); u32(1_000_000); u32(5); u32(5); f += pkt + [0, 0, 0]; u32(40)
        let recs = try Pcap.read(f)
        #expect(recs == [PcapRecord(timestampNanos: 1_000_000_000, data: pkt)])
        // Cut inside a second packet block: the first still comes back.
        let whole = f
        f += whole.suffix(40).prefix(30)
        let cut = try Pcap.readPrefix(f)
        #expect(cut.records == recs && cut.cut != nil)
    }
}

/// A packet over several buffers (AF_XDP multi-buffer) parses as the whole
/// frame does wherever its headers all lie in the first buffer, checksums
/// included (summed across the buffers, at odd splits too), and says so where
/// they do not; nothing past the first buffer is read (it is a copy of its own).
@Suite struct SplitPacketTests {
    static func frames() -> [[UInt8]] {
        var out: [[UInt8]] = []
        for (v6, size) in [(false, 64), (false, 1518), (true, 200), (false, 9000)] {
            let src: IPAddress = v6 ? .v6(IPv6Address("fd00:198:18::1")!) : .v4(IPv4Address("198.18.0.1")!)
            let dst: IPAddress = v6 ? .v6(IPv6Address("fd00:198:18:1::1")!) : .v4(IPv4Address("198.18.1.1")!)
            var f = [UInt8](repeating: 0, count: size)
            f.withUnsafeMutableBytes { p in
                let spec = FrameSpec(dstMAC: MACAddress("02:4c:00:00:00:02")!, srcMAC: MACAddress("02:4c:00:00:00:01")!, src: src, dst: dst,
                                     transport: 17, srcPort: 1024, dstPort: 9000, frameLength: size)
                let l4 = FrameBuilder.build(spec, into: p.baseAddress!, fill: 0x5a)!
                FrameBuilder.writeTransportChecksum(p.baseAddress!, l3: l4 - (v6 ? 40 : 20), l4: l4, length: size - l4, transport: 17, isV6: v6)
            }
            out.append(f)
        }
        return out + FuzzCorpusTests.inputs().compactMap { try? [UInt8](Data(contentsOf: $0)) }.filter { $0.count >= 14 }
    }

    static func split(_ f: [UInt8], at k: Int, _ m: Int) -> ParsedPacket {
        f.withUnsafeBytes { whole in
            let head = UnsafeMutableRawBufferPointer.allocate(byteCount: k, alignment: 1)
            defer { head.deallocate() }
            head.copyMemory(from: UnsafeRawBufferPointer(rebasing: whole[0..<k]))
            let buffers = [UnsafeRawBufferPointer(head), UnsafeRawBufferPointer(rebasing: whole[k..<m]), UnsafeRawBufferPointer(rebasing: whole[m...])]
            return PacketParser.parse(head: UnsafeRawBufferPointer(head), length: f.count, verifyChecksums: true) {
                Checksum.sum(buffers: buffers, from: $0, count: $1, initial: $2)
            }
        }
    }

    @Test func everySplitParsesAsTheWholeFrameOrSaysWhy() {
        var compared = 0, refused = 0
        for f in Self.frames() {
            let whole = parse(f)
            let want = PacketSummary(index: 1, parsed: whole, bytes: f, originalLength: f.count).line
            let points = f.count <= 256 ? Array(1..<f.count) : Array(1..<130) + [f.count / 2, f.count - 1]
            for k in points {
                for m in Set([k, min(k + 1, f.count), min(k + 7, f.count), f.count]) {
                    let s = Self.split(f, at: k, m)
                    if s.stop == .headersPastFirstBuffer {
                        refused += 1
                        #expect(k < 128 || whole.stop != nil, "\(f.count)-byte frame split at \(k): headers refused past byte 128")
                        continue
                    }
                    compared += 1
                    let got = PacketSummary(index: 1, parsed: s, bytes: f, originalLength: f.count).line
                    if got != want { Issue.record("\(f.count)-byte frame split at \(k), \(m): \(got) != \(want)"); return }
                }
            }
        }
        #expect(compared > 1000 && refused > 100, "compared \(compared), refused \(refused)")
    }

    /// The sum across buffers equals the contiguous sum, whatever the (odd) split.
    @Test func checksumAcrossBuffersIsTheContiguousOne() {
        let f = (0..<1001).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        f.withUnsafeBytes { w in
            let want = Checksum.fold(Checksum.sum(w.baseAddress! + 3, count: 990, initial: 12345))
            for k in [1, 2, 3, 4, 5, 100, 501, 999] {
                for m in [k, k + 1, k + 3, 1000] where m >= k && m <= 1001 {
                    let b = [UnsafeRawBufferPointer(rebasing: w[0..<k]), UnsafeRawBufferPointer(rebasing: w[k..<m]), UnsafeRawBufferPointer(rebasing: w[m...])]
                    #expect(Checksum.fold(Checksum.sum(buffers: b, from: 3, count: 990, initial: 12345)) == want, "split \(k), \(m)")
                }
            }
        }
    }
}

/// A device that hashes a flow type by its addresses only (igb's UDP by default):
/// the prediction ignores the ports, and the planner spreads flows by address.
@Test func rssWithoutPortsPredictsAndPlansByAddress() {
    let table = RSSTable(queues: 2)
    let byAddress = RSSTable(key: Toeplitz.standardKey, indirection: table.indirection, portHashing: RSSPortHashing(udp4: false))
    let a = FlowKey(src: .v4(IPv4Address(0xc612_0001)), dst: .v4(IPv4Address(0xc612_0102)), srcPort: 1000, dstPort: 9000)
    var b = a
    b.srcPort = 2000
    #expect(byAddress.hash(a) == byAddress.hash(b), "ports ignored for UDP over IPv4")
    #expect(byAddress.hash(a) == Toeplitz().hash(a, withPorts: false))
    var t = a
    t.proto = 6
    #expect(byAddress.hash(t) == Toeplitz().hash(t), "TCP keeps its ports")
    let plan = FlowPlanner.plan(table: byAddress, queues: 2, perQueue: 4, template: a)
    #expect(plan?.count == 8 && Set(plan?.map(\.queue) ?? []) == [0, 1])
    #expect(Set(plan?.map(\.flow.src) ?? []).count == 8, "each planned flow has its own source address")
    for p in plan ?? [] { #expect(byAddress.queue(for: p.flow) == p.queue) }
}
