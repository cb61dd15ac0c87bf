import CLanes
import LanesCore
import LanesEngine
import LanesPacket
import LanesXDP
import Testing

/// AF_XDP multi-buffer over in-memory rings: a packet is the chain of its
/// descriptors (XDP_PKT_CONTD on all but the last); the lane hands apps whole
/// packets and transmits them whole, in order, and every frame comes back once.
@Suite struct MultiBufferTests {
    /// A UDP frame of `length` bytes whose payload bytes carry `tag`, so every packet differs.
    static func packet(_ length: Int, tag: Int) -> [UInt8] {
        var b = BenchLoop.udpFrame()
        b += [UInt8](repeating: 0, count: max(0, length - b.count))
        for i in 42..<length { b[i] = UInt8(truncatingIfNeeded: tag &* 31 &+ i) }
        return Array(b.prefix(length))
    }

    static func swapped(_ p: [UInt8]) -> [UInt8] { Array(p[6..<12] + p[0..<6] + p[12...]) }

    /// Packets of 2-5 buffers after 0-4 one-buffer packets, so that the end of
    /// a burst (64 descriptors) falls at every position inside a packet; one
    /// packet still being written when the lane looks. Each comes out whole, in
    /// order, with its MACs swapped and as many buffers as it came with.
    @Test(arguments: 2...5)
    func packetsSplitAtEveryBurstBoundaryArriveWhole(buffers: Int) {
        let segment = 1000
        for shift in 0..<5 {
            let port = InMemoryPort(ringSize: 512, frameSize: 2048, frameCount: 2048)
            var l = InMemoryLane(app: MacSwapApp(), port: port, batch: 32, multiBuffer: true)
            var sent: [([UInt8], Int)] = []
            for i in 0..<shift { let p = Self.packet(60 + i, tag: i); port.kernelReceive(packet: p, segment: segment); sent.append((p, 1)) }
            for i in 0..<40 {
                let p = Self.packet(segment * (buffers - 1) + 100 + i, tag: 100 + i)
                // The last packet is published one buffer at a time: the lane must wait for it.
                let last = i == 39
                #expect(port.kernelReceive(packet: p, segment: segment, publish: last ? 1 : nil))
                sent.append((p, buffers))
            }
            var got: [([UInt8], Int)] = []
            for _ in 0..<20 {
                _ = l.lane.step()
                port.kernelTransmitPackets { got.append(($0, $1)) }
            }
            #expect(got.count == sent.count - 1, "shift \(shift): the packet still being written waits")
            port.publishPending()
            for _ in 0..<5 {
                _ = l.lane.step()
                port.kernelTransmitPackets { got.append(($0, $1)) }
            }
            #expect(got.count == sent.count, "shift \(shift)")
            var wrong = 0
            for (k, (g, s)) in zip(got, sent).enumerated() where g.0 != Self.swapped(s.0) || g.1 != s.1 {
                if wrong == 0 { Issue.record("shift \(shift) packet \(k): \(g.0.count) bytes in \(g.1) buffers, sent \(s.0.count) in \(s.1)") }
                wrong += 1
            }
            #expect(wrong == 0)
            let c = l.counters
            #expect(c[.rxPackets] == UInt64(sent.count) && c[.txPackets] == UInt64(sent.count))
            #expect(c[.rxBytes] == UInt64(sent.reduce(0) { $0 + $1.0.count }))
            while l.lane.step() > 0 { port.kernelTransmitPackets { _, _ in } }
            #expect(l.ledger.balanced, "\(l.ledger)")
        }
    }

    /// A packet with a zero-length buffer, or one past the UMEM, is dropped whole
    /// and counted; its good frames come back, and the packets after it go on.
    @Test func anInvalidBufferDropsItsPacketAndTheLaneGoesOn() {
        let port = InMemoryPort(ringSize: 256, frameSize: 2048, frameCount: 1024)
        var l = InMemoryLane(app: MacSwapApp(), port: port, batch: 64, multiBuffer: true)
        let umemBytes = UInt64(port.frameSize * port.frameCount)
        var lost: UInt64 = 0
        let good = (0..<3).map { Self.packet(4000 + $0, tag: $0) }
        port.kernelReceive(packet: good[0], segment: 1500)
        port.kernelReceive(packet: Self.packet(4000, tag: 9), segment: 1500) { $0[1].len = 0 }
        port.kernelReceive(packet: good[1], segment: 1500)
        port.kernelReceive(packet: Self.packet(4000, tag: 8), segment: 1500) { lost = $0[2].addr; $0[2].addr = umemBytes + 4096 }
        port.kernelReceive(packet: good[2], segment: 1500)
        var got: [[UInt8]] = []
        for _ in 0..<4 { _ = l.lane.step(); port.kernelTransmitPackets { p, _ in got.append(p) } }
        #expect(got == good.map(Self.swapped))
        #expect(l.counters[.dropInvalidDesc] == 2)
        #expect(l.counters[.rxPackets] == 5 && l.counters[.txPackets] == 3)
        // The frame behind the address past the UMEM never came back from the fake kernel: that one only.
        #expect(lost < umemBytes)
        #expect(l.ledger.inFlight == 1, "\(l.ledger)")
    }

    /// More buffers than the kernel takes in one TX packet: counted, recycled, the
    /// next packet forwarded. More buffers than a burst holds: dropped up to its
    /// last buffer across turns, counted once.
    @Test func tooManyBuffersIsCountedAndTheLaneGoesOn() {
        let port = InMemoryPort(ringSize: 512, frameSize: 2048, frameCount: 2048)
        var l = InMemoryLane(app: MacSwapApp(), port: port, batch: 32, multiBuffer: true, maxSegments: 4)
        let ok1 = Self.packet(3000, tag: 1), ok2 = Self.packet(3500, tag: 2)
        port.kernelReceive(packet: Self.packet(6 * 500, tag: 3), segment: 500) // 6 buffers > 4
        port.kernelReceive(packet: ok1, segment: 1000)                         // 3 buffers
        port.kernelReceive(packet: Self.packet(70 * 100, tag: 4), segment: 100) // 70 > a burst of 64
        port.kernelReceive(packet: ok2, segment: 1000)
        var got: [[UInt8]] = []
        for _ in 0..<8 { _ = l.lane.step(); port.kernelTransmitPackets { p, _ in got.append(p) } }
        #expect(got == [ok1, ok2].map(Self.swapped))
        #expect(l.counters[.dropTooManyFrags] == 2)
        #expect(l.counters[.rxPackets] == 4)
        while l.lane.step() > 0 { port.kernelTransmitPackets { _, _ in } }
        #expect(l.ledger.balanced, "\(l.ledger)")
    }

    /// `lanes gen --size 64,9000` on 2048-byte frames: a 9000-byte packet is
    /// written across 5 consecutive frames and sent as 5 descriptors; every packet
    /// parses with valid checksums and the lane gets every frame back.
    @Test func theGeneratorSendsJumboPacketsAcrossFrames() {
        let flow = FlowKey(src: .v4(IPv4Address("198.18.0.1")!), dst: .v4(IPv4Address("198.18.1.1")!), srcPort: 1024, dstPort: 9000)
        let plan = GenLanePlan(streams: [0], flows: [flow], srcMAC: MACAddress("02:4c:00:00:00:01")!, dstMAC: MACAddress("02:4c:00:00:00:02")!,
                               sizes: [64, 9000], pps: nil, count: 3000, receive: false)
        let port = InMemoryPort(ringSize: 256, frameSize: 2048, frameCount: 1024)
        var l = InMemoryLane(app: GenApp(plan: plan), port: port, batch: 32, multiBuffer: true)
        var seen = 0, bad = 0
        for _ in 0..<2000 {
            _ = l.lane.step()
            port.kernelTransmitPackets { bytes, buffers in
                let size = seen % 2 == 0 ? 64 : 9000
                let r = bytes.withUnsafeBytes { PacketParser.parse($0, verifyChecksums: true) }
                let seq = bytes.count >= r.payloadOffset + 8 ? UInt32(bytes[r.payloadOffset + 4]) << 24 | UInt32(bytes[r.payloadOffset + 5]) << 16
                    | UInt32(bytes[r.payloadOffset + 6]) << 8 | UInt32(bytes[r.payloadOffset + 7]) : 0
                if bytes.count != size || buffers != (size + 2047) / 2048 || r.l4ChecksumValid != true || r.ipv4ChecksumValid != true || seq != UInt32(seen) {
                    if bad == 0 { Issue.record("packet \(seen): \(bytes.count) bytes in \(buffers) buffers, checksum \(String(describing: r.l4ChecksumValid)), seq \(seq)") }
                    bad += 1
                }
                seen += 1
            }
            if l.lane.app.finished && port.occupancy.tx == 0 && seen == 3000 { break }
        }
        #expect(seen == 3000 && bad == 0)
        #expect(l.counters[.txPackets] == 3000)
        #expect(l.counters[.txBytes] == 1500 * 64 + 1500 * 9000)
        while l.lane.step() > 0 {}
        #expect(l.ledger.balanced, "\(l.ledger)")
    }

    /// When the sockets bind with XDP_USE_SG, and what is refused.
    @Test func multiBufferIsChosenByThePacketSize() throws {
        var c = EngineConfig(interface: "none")
        #expect(try Engine.needsMultiBuffer(c, interfaces: [], maxSegments: 18) == false)
        c.largestPacket = 2048
        #expect(try Engine.needsMultiBuffer(c, interfaces: [], maxSegments: 18) == false)
        c.largestPacket = 9000
        #expect(try Engine.needsMultiBuffer(c, interfaces: [], maxSegments: 18) == true)
        c.largestPacket = 2048 * 18 + 1
        #expect(throws: LanesError.self) { try Engine.needsMultiBuffer(c, interfaces: [], maxSegments: 18) }
        c.largestPacket = 9000
        c.multiBuffer = false
        #expect(throws: LanesError.self) { try Engine.needsMultiBuffer(c, interfaces: [], maxSegments: 18) }
        c.largestPacket = 0
        c.multiBuffer = true
        #expect(try Engine.needsMultiBuffer(c, interfaces: [], maxSegments: 18) == true)
    }
}
