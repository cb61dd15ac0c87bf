import Benchmark
import LanesCore
import LanesEngine
import LanesPacket

// Each benchmark iteration handles one burst of 64 packets (or 64 operations),
// so ns per packet = the reported time / 64; the lane loop benchmarks run 1000
// bursts (64,000 packets) per iteration, so ns per packet = time / 64,000.
// Mallocs: "baseline (empty)" shows the harness's own per-sample mallocs; a
// benchmark at the same count allocates nothing in its loop.

let burst = 64

/// The two rings' burst calls, so one benchmark body serves both.
protocol BurstRing {
    func enqueue(_ burst: UnsafePointer<FrameDesc>, count: Int) -> Int
    func dequeue(into out: UnsafeMutablePointer<FrameDesc>, max: Int) -> Int
}
extension SPSCRing: BurstRing {}
extension MPMCRing: BurstRing {}

/// One burst of 64 in, then out, per iteration.
@inline(__always)
func ringBurstBenchmark<R: BurstRing>(_ name: String, _ make: @escaping () -> R) {
    Benchmark(name) { benchmark in
        let ring = make()
        let a = UnsafeMutablePointer<FrameDesc>.allocate(capacity: burst)
        for i in 0..<burst { a[i] = FrameDesc(addr: UInt64(i * 2048), len: 64) }
        defer { a.deallocate() }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(ring.enqueue(a, count: burst))
            blackHole(ring.dequeue(into: a, max: burst))
        }
        benchmark.stopMeasurement() // before the locals are freed: freeing is not what is measured
    }
}

let benchmarks: @Sendable () -> Void = {
    // The harness's own mallocs per sample: the floor every benchmark below shares.
    Benchmark("baseline (empty)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(0) }
    }

    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .instructions, .throughput],
        warmupIterations: 100,
        scalingFactor: .one,
        maxDuration: .seconds(2),
        maxIterations: 1_000_000)

    Benchmark("parse eth/ipv4/udp x64") { benchmark in
        let frame = BenchLoop.udpFrame()
        let buf = UnsafeMutableRawBufferPointer.allocate(byteCount: frame.count, alignment: 64)
        defer { buf.deallocate() }
        buf.copyBytes(from: frame)
        let raw = UnsafeRawBufferPointer(buf)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            var ports: UInt32 = 0
            for _ in 0..<burst {
                let r = PacketParser.parse(raw)
                ports &+= UInt32(r.dstPort)
            }
            blackHole(ports)
        }
        benchmark.stopMeasurement() // before the locals are freed: freeing is not what is measured
    }

    Benchmark("macswap x64") { benchmark in
        let buf = UnsafeMutableRawPointer.allocate(byteCount: 64 * 2048, alignment: 64)
        defer { buf.deallocate() }
        let frame = BenchLoop.udpFrame()
        for i in 0..<burst { frame.withUnsafeBytes { (buf + i * 2048).copyMemory(from: $0.baseAddress!, byteCount: 64) } }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for i in 0..<burst { EthernetEdit.swapAddresses(buf + i * 2048) }
        }
        benchmark.stopMeasurement() // before the locals are freed: freeing is not what is measured
        blackHole(buf.load(as: UInt8.self))
    }

    Benchmark("incremental checksum (ttl decrement) x64") { benchmark in
        let frame = BenchLoop.udpFrame()
        let buf = UnsafeMutableRawPointer.allocate(byteCount: 64, alignment: 64)
        defer { buf.deallocate() }
        frame.withUnsafeBytes { buf.copyMemory(from: $0.baseAddress!, byteCount: 64) }
        var r = PacketParser.parse(UnsafeRawBufferPointer(start: buf, count: 64))
        r.ttl = 255
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for _ in 0..<burst {
                buf.storeBytes(of: 255, toByteOffset: 22, as: UInt8.self)
                blackHole(PacketEdit.decrementTTL(buf, r))
            }
        }
        benchmark.stopMeasurement() // before the locals are freed: freeing is not what is measured
    }

    Benchmark("toeplitz ipv4+ports x64") { benchmark in
        let t = Toeplitz()
        let input = FlowKey(src: .v4(IPv4Address("198.18.0.1")!), dst: .v4(IPv4Address("198.18.1.1")!), srcPort: 1024, dstPort: 9000).rssInput()
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            var h: UInt32 = 0
            for _ in 0..<burst { h ^= t.hash(input) }
            blackHole(h)
        }
        benchmark.stopMeasurement() // before the locals are freed: freeing is not what is measured
    }

    Benchmark("build eth/ipv4/udp frame x64") { benchmark in
        let spec = FrameSpec(dstMAC: MACAddress("02:00:00:00:00:0b")!, srcMAC: MACAddress("02:00:00:00:00:0a")!,
                             src: .v4(IPv4Address("198.18.0.1")!), dst: .v4(IPv4Address("198.18.1.1")!),
                             srcPort: 1024, dstPort: 9000, frameLength: 64)
        let buf = UnsafeMutableRawPointer.allocate(byteCount: 2048, alignment: 64)
        defer { buf.deallocate() }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for _ in 0..<burst { blackHole(FrameBuilder.build(spec, into: buf)) }
        }
        benchmark.stopMeasurement() // before the locals are freed: freeing is not what is measured
    }

    ringBurstBenchmark("SPSC ring enqueue+dequeue burst of 64") { SPSCRing(capacity: 1024) }
    ringBurstBenchmark("MPMC ring enqueue+dequeue burst of 64") { MPMCRing(capacity: 1024) }

    Benchmark("MPMC ring one frame at a time x64 (a shared free list's cost)") { benchmark in
        let ring = MPMCRing(capacity: 1024)
        let a = UnsafeMutablePointer<FrameDesc>.allocate(capacity: 1)
        a[0] = FrameDesc(addr: 2048, len: 64)
        defer { a.deallocate() }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for _ in 0..<burst {
                blackHole(ring.enqueue(a, count: 1))
                blackHole(ring.dequeue(into: a, max: 1))
            }
        }
        benchmark.stopMeasurement() // before the locals are freed: freeing is not what is measured
    }

    Benchmark("frame pool pop+push x64") { benchmark in
        var pool = FramePool(frameCount: 4096, frameSize: 2048)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            var acc: UInt64 = 0
            for _ in 0..<burst { acc &+= pool.pop() }
            for i in 0..<burst { pool.push(UInt64(i * 2048)) }
            blackHole(acc)
        }
        benchmark.stopMeasurement() // before the locals are freed: freeing is not what is measured
    }

    Benchmark("lane loop drop, in-memory rings, 1000 bursts of 64") { benchmark in
        let port = InMemoryPort(ringSize: 2048, frameSize: 2048, frameCount: 4096)
        port.setTemplate(BenchLoop.udpFrame(), copy: false)
        var l = InMemoryLane(app: DropApp(), port: port, batch: burst)
        for _ in 0..<1000 { port.kernelReceive(burst); _ = l.lane.step() }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for _ in 0..<1000 {
                port.kernelReceive(burst)
                blackHole(l.lane.step())
            }
        }
        benchmark.stopMeasurement() // before the port is freed: unmapping its 8 MiB UMEM is not what is measured
        blackHole(port)
    }

    Benchmark("lane loop macswap, in-memory rings, 1000 bursts of 64") { benchmark in
        let port = InMemoryPort(ringSize: 2048, frameSize: 2048, frameCount: 4096)
        port.setTemplate(BenchLoop.udpFrame(), copy: false)
        // Frames keep their bytes between turns (the template copy is off): fill each once.
        let frame = BenchLoop.udpFrame()
        for i in 0..<4096 { frame.withUnsafeBytes { (port.umem + i * 2048).copyMemory(from: $0.baseAddress!, byteCount: 64) } }
        var l = InMemoryLane(app: MacSwapApp(), port: port, batch: burst)
        for _ in 0..<1000 { port.kernelReceive(burst); _ = l.lane.step(); port.kernelTransmit() }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            for _ in 0..<1000 {
                port.kernelReceive(burst)
                blackHole(l.lane.step())
                port.kernelTransmit()
            }
        }
        benchmark.stopMeasurement() // before the port is freed: unmapping its 8 MiB UMEM is not what is measured
        blackHole(port)
    }
}
