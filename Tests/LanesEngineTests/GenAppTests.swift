import LanesCore
import LanesEngine
import LanesPacket
import Testing

/// The generator lane over in-memory rings: every frame it sends, parsed.
@Suite struct GenAppTests {
    static func flows(v6: Bool) -> [FlowKey] {
        (0..<3).map { i in
            v6 ? FlowKey(src: .v6(IPv6Address("fd00:198:18::1")!), dst: .v6(IPv6Address("fd00:198:18:1::\(i + 1)")!),
                         srcPort: UInt16(1024 + i), dstPort: 9000)
               : FlowKey(src: .v4(IPv4Address("198.18.0.1")!), dst: .v4(IPv4Address("198.18.1.\(i + 1)")!),
                         srcPort: UInt16(1024 + i), dstPort: 9000)
        }
    }

    @Test(arguments: [false, true], [nil, 7 as UInt16?])
    func sendsThePatternWithValidChecksumsAndPerStreamSequences(v6: Bool, vlan: UInt16?) {
        let flows = Self.flows(v6: v6)
        let sizes = v6 ? [90, 1000, 128] : [64, 1518, 100]
        var plan = GenLanePlan(streams: [0, 1, 2], flows: flows, srcMAC: MACAddress("02:4c:00:00:00:01")!,
                               dstMAC: MACAddress("02:4c:00:00:00:02")!, sizes: sizes, pps: nil, count: 5000, receive: false)
        plan.vlan = vlan
        let port = InMemoryPort(ringSize: 256, frameCount: 512)
        var l = InMemoryLane(app: GenApp(plan: plan), port: port, batch: 32)
        var seen = 0
        var nextSeq = [UInt32](repeating: 0, count: 3)
        var failures = 0
        for _ in 0..<1000 {
            _ = l.lane.step()
            port.kernelTransmit { bytes in
                // Pattern: streams in turn, then the next size.
                let stream = seen % 3, size = sizes[(seen / 3) % sizes.count]
                seen += 1
                let r = PacketParser.parse(bytes, verifyChecksums: true)
                let sig = bytes.baseAddress! + r.payloadOffset
                let ok = bytes.count == size && r.layers.contains(.udp) && r.l4ChecksumValid == true
                    && (v6 || r.ipv4ChecksumValid == true)
                    && r.vlanCount == (vlan == nil ? 0 : 1)
                    && r.srcPort == UInt16(1024 + stream)
                    && UInt16(bigEndian: sig.loadUnaligned(as: UInt16.self)) == Signature.magic
                    && Int(UInt16(bigEndian: sig.loadUnaligned(fromByteOffset: 2, as: UInt16.self))) == stream
                    && UInt32(bigEndian: sig.loadUnaligned(fromByteOffset: 4, as: UInt32.self)) == nextSeq[stream]
                    && UInt64(bigEndian: sig.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) > 0
                nextSeq[stream] += 1
                if !ok && failures < 5 {
                    failures += 1
                    Issue.record("packet \(seen - 1) (stream \(stream), size \(size)): \(bytes.count) bytes, layers \(r.layers.names), l4 checksum \(String(describing: r.l4ChecksumValid))")
                }
            }
            if l.lane.app.finished && port.occupancy.tx == 0 { break }
        }
        #expect(seen == 5000)
        #expect(failures == 0)
        while l.lane.step() > 0 { port.kernelTransmit() }
        #expect(l.ledger.balanced, "\(l.ledger)")
        #expect(l.counters[.txPackets] == 5000)
    }
}

extension GenAppTests {
    /// A generator that asks for every frame (a TX-only gen: all but 64) on a lane
    /// whose fill ring set-up primed with half of them: the primed half stays
    /// receiving, the generator takes the rest, and it sends.
    @Test func aGeneratorAskingForMoreThanTheUnprimedFramesGetsTheRest() {
        let plan = GenLanePlan(streams: [0], flows: Self.flows(v6: false), srcMAC: MACAddress("02:4c:00:00:00:01")!,
                               dstMAC: MACAddress("02:4c:00:00:00:02")!, sizes: [64], pps: nil, count: 1000, receive: false)
        let port = InMemoryPort(ringSize: 256, frameCount: 512)
        let primed = port.primeFill(frames: 0..<256)
        #expect(GenApp(plan: plan).generatorFrames(of: 512) == 512 - 64)
        var l = InMemoryLane(app: GenApp(plan: plan), port: port, batch: 32, primed: primed)
        #expect(l.lane.generatorPool.capacity == 256)
        #expect(l.lane.pool.capacity == 256)
        var sent = 0
        for _ in 0..<200 { _ = l.lane.step(); sent += port.kernelTransmit() }
        #expect(sent == 1000)
        #expect(l.ledger.balanced, "\(l.ledger)")
    }
}
