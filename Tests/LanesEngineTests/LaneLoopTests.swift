import CLanes
import LanesCore
import LanesEngine
import LanesPacket
import LanesXDP
import Testing

/// The lane loop over in-memory rings with a fake kernel side: no root, no NIC.
@Suite struct LaneLoopTests {
    /// The lane copies RX descriptors into its burst as FrameDescs, and TX slots
    /// from them, by layout: both must stay the kernel's struct xdp_desc.
    @Test func frameDescHasTheKernelDescriptorLayout() {
        #expect(MemoryLayout<FrameDesc>.size == MemoryLayout<xdp_desc>.size)
        #expect(MemoryLayout<FrameDesc>.stride == MemoryLayout<xdp_desc>.stride)
        #expect(MemoryLayout<FrameDesc>.offset(of: \.addr) == MemoryLayout<xdp_desc>.offset(of: \.addr))
        #expect(MemoryLayout<FrameDesc>.offset(of: \.len) == MemoryLayout<xdp_desc>.offset(of: \.len))
        #expect(MemoryLayout<FrameDesc>.offset(of: \.options) == MemoryLayout<xdp_desc>.offset(of: \.options))
    }

    /// Ring slots read once per burst index with the ring's mask, across the wrap.
    @Test func ringSlotsWrapWithTheMask() {
        let port = InMemoryPort(ringSize: 8, frameCount: 16)
        let rings = port.takeRings()
        let slots = rings.fill.slots(from: UInt32.max - 2)
        for i in 0..<6 { slots[i] = UInt64(100 + i) }
        // Free-running indices 2^32-3 ... 2 land on slots 5, 6, 7, 0, 1, 2.
        let raw = port.memory.fillAddrs
        #expect([5, 6, 7, 0, 1, 2].map { raw[$0] } == [100, 101, 102, 103, 104, 105])
        #expect((0..<6).map { slots[$0] } == [100, 101, 102, 103, 104, 105])
    }

    @Test func dropCountsAndRecyclesEveryFrame() {
        let port = InMemoryPort(ringSize: 256, frameCount: 1024)
        port.setTemplate(BenchLoop.udpFrame())
        var l = InMemoryLane(app: DropApp(), port: port, batch: 64)
        #expect(l.ledger.balanced)
        #expect(l.ledger.fillRing == 256)
        var sent = 0
        for i in 0..<2000 {
            sent += port.kernelReceive(1 + i % 100)
            _ = l.lane.step()
            #expect(l.ledger.balanced, "step \(i): \(l.ledger)")
        }
        while l.lane.step() > 0 {}
        let c = l.counters
        #expect(c[.rxPackets] == UInt64(sent))
        #expect(c[.dropApp] == UInt64(sent))
        #expect(c[.rxBytes] == UInt64(sent * 64))
        #expect(c[.txPackets] == 0)
        #expect(l.ledger.balanced)
        #expect(l.ledger.rxRing == 0)
    }

    /// Set-up primes the fill ring before the XDP program is attached; the lane
    /// adopts those frames: none is handed out twice, every one comes back.
    @Test func primedFillRingFramesBelongToTheLane() {
        let port = InMemoryPort(ringSize: 256, frameCount: 1024)
        port.setTemplate(BenchLoop.udpFrame())
        let primed = port.primeFill(frames: 0..<200)
        #expect(primed == 200)
        var l = InMemoryLane(app: DropApp(), port: port, batch: 64, primed: primed)
        #expect(l.ledger.balanced, "\(l.ledger)")
        #expect(l.ledger.fillRing == 256 && l.lane.freeFrames == 1024 - 256)
        var received: [UInt64] = []
        let rx = port.memory.rxDescs // the fake kernel's side: the slots it wrote
        for i in 0..<40 {
            let n = port.kernelReceive(50)
            for _ in 0..<n { received.append(rx[received.count % 256].addr) }
            _ = l.lane.step()
            #expect(l.ledger.balanced, "step \(i): \(l.ledger)")
        }
        // The primed frames come first, in order; no frame is received twice
        // before every frame was received once (a frame owned twice would be).
        #expect(Array(received.prefix(200)) == (0..<200).map { UInt64($0 * port.frameSize) })
        #expect(received.count > 1024)
        #expect(Set(received.prefix(1024)).count == 1024)
        #expect(l.counters[.rxPackets] == UInt64(received.count))
    }

    /// The fill ring is topped up in chunks (an eighth of the ring here: 32 of 256),
    /// never a few frames per turn: each write of the producer makes the kernel
    /// reload it, a cache miss on the receiving CPU. It still never runs low.
    @Test func fillRingIsToppedUpInChunks() {
        let port = InMemoryPort(ringSize: 256, frameCount: 1024)
        port.setTemplate(BenchLoop.udpFrame())
        var l = InMemoryLane(app: DropApp(), port: port, batch: 16)
        let producer = port.memory.words + 6 // the fill ring's producer index
        var last = producer.pointee, writes = 0, small: [UInt32] = []
        for i in 0..<3000 {
            _ = port.kernelReceive(1 + i % 13)
            _ = l.lane.step()
            let p = producer.pointee
            if p != last {
                writes += 1
                if p &- last < 32 { small.append(p &- last) }
                last = p
            }
            #expect(l.ledger.fillRing > 256 - 32, "step \(i): \(l.ledger)")
            #expect(l.ledger.balanced, "step \(i): \(l.ledger)")
        }
        #expect(writes > 100)
        #expect(small.isEmpty, "fill ring topped up by fewer than a chunk: \(small.prefix(10))")
    }

    @Test func macswapSendsEveryPacketBackSwapped() {
        let port = InMemoryPort(ringSize: 256, frameCount: 1024)
        let frame = BenchLoop.udpFrame()
        port.setTemplate(frame)
        var l = InMemoryLane(app: MacSwapApp(), port: port, batch: 32)
        var received = 0, transmitted = 0, wrong = 0
        for _ in 0..<500 {
            received += port.kernelReceive(48)
            _ = l.lane.step()
            transmitted += port.kernelTransmit { pkt in
                if Array(pkt[0..<6]) != Array(frame[6..<12]) || Array(pkt[6..<12]) != Array(frame[0..<6]) || Array(pkt[12...]) != Array(frame[12...]) { wrong += 1 }
            }
            #expect(l.ledger.balanced, "\(l.ledger)")
        }
        for _ in 0..<8 { _ = l.lane.step(); transmitted += port.kernelTransmit() }
        _ = l.lane.step()
        #expect(received > 0)
        #expect(transmitted == received)
        #expect(wrong == 0)
        let c = l.counters
        #expect(c[.txPackets] == UInt64(received))
        #expect(c.drops == 0)
        #expect(l.ledger.balanced)
        #expect(l.ledger.txRing == 0 && l.ledger.completionRing == 0)
    }

    @Test func fullTXRingDropsAndCountsWithoutLosingFrames() {
        let port = InMemoryPort(ringSize: 64, frameCount: 512)
        port.setTemplate(BenchLoop.udpFrame())
        var l = InMemoryLane(app: MacSwapApp(), port: port, batch: 64)
        // The "peer" never transmits: the TX ring fills, then completions never come.
        for _ in 0..<50 {
            port.kernelReceive(64)
            _ = l.lane.step()
            #expect(l.ledger.balanced, "\(l.ledger)")
        }
        let c = l.counters
        #expect(c[.txPackets] == 64)
        #expect(c[.dropTxRingFull] > 0)
        #expect(c[.rxPackets] == c[.txPackets] + c[.dropTxRingFull])
        // The peer wakes up: everything completes and the lane goes on.
        port.kernelTransmit()
        _ = l.lane.step()
        #expect(l.ledger.balanced)
        #expect(l.ledger.txRing == 0)
    }

    @Test func shortFramesAreDroppedAsMalformed() {
        let port = InMemoryPort(ringSize: 64, frameCount: 256)
        port.setTemplate([1, 2, 3, 4, 5, 6, 7, 8])
        var l = InMemoryLane(app: MacSwapApp(), port: port, batch: 16)
        port.kernelReceive(10)
        _ = l.lane.step()
        #expect(l.counters[.dropMalformed] == 10)
        #expect(l.counters[.txPackets] == 0)
        #expect(l.ledger.balanced)
    }

    @Test func partitionKeepsOrderAndLosesNothing() {
        let p = UnsafeMutablePointer<FrameDesc>.allocate(capacity: 10)
        defer { p.deallocate() }
        for i in 0..<10 { p[i] = FrameDesc(addr: UInt64(i), len: UInt32(i)) }
        let kept = LaneApps.partition(p, count: 10) { $0.addr % 3 != 0 }
        #expect(kept == 6)
        #expect((0..<kept).map { p[$0].addr } == [1, 2, 4, 5, 7, 8])
        #expect(Set((0..<10).map { p[$0].addr }) == Set(0..<10))
    }
}

extension LaneLoopTests {
    /// A pipeline worker is a lane fed by its ring (no root): it sends what the RX
    /// lane handed it, counts no RX of its own (the RX lane did), gives every
    /// frame back through its return ring, and at stop 1 ends once it is drained.
    @Test func aWorkerLaneSendsWhatItsRingFeedsAndReturnsEveryFrame() {
        let port = InMemoryPort(ringSize: 256, frameCount: 512)
        let frame = BenchLoop.udpFrame()
        for i in 0..<512 { frame.withUnsafeBytes { (port.umem + i * port.frameSize).copyMemory(from: $0.baseAddress!, byteCount: frame.count) } }
        let input = SPSCRing(capacity: 256), returns = SPSCRing(capacity: 512)
        let stats = StatsArea(lanes: 1)
        let rings = port.takeRings() // the worker uses the TX half only
        var lane = Lane(input: WorkerInput(input: input, returns: returns), out: rings.out, app: IOApp(), umem: port.umem,
                        frameSize: port.frameSize, frameCount: 512, primed: 512, batch: 32, counters: stats.counters(0))
        #expect(lane.freeFrames == 0, "a worker starts with no frame of its own")
        var descs = (0..<200).map { FrameDesc(addr: UInt64($0 * port.frameSize), len: UInt32(frame.count)) }
        #expect(descs.withUnsafeMutableBufferPointer { input.enqueue($0.baseAddress!, count: 200) } == 200)
        var sent = 0
        for _ in 0..<50 { _ = lane.step(); sent += port.kernelTransmit() }
        let stop = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
        defer { stop.deallocate() }
        stop.initialize(to: 1)
        lane.run(stop: stop) // ends: nothing in the ring, nothing in flight
        let c = stats.counters(0).snapshot()
        #expect(sent == 200 && c[.txPackets] == 200)
        #expect(c[.rxPackets] == 0, "the RX lane counted these")
        var back = [FrameDesc](repeating: FrameDesc(addr: 0, len: 0), count: 512)
        let n = back.withUnsafeMutableBufferPointer { returns.dequeue(into: $0.baseAddress!, max: 512) }
        #expect(n == 200)
        #expect(Set(back[0..<n].map(\.addr)) == Set(descs.map(\.addr)), "every frame comes home once")
        descs.removeAll()
    }
}
