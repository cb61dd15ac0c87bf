import LanesCore
import LanesXDP
import LanesPacket

/// Times the lane loop over an InMemoryPort: the fake kernel puts `burst`
/// packets on the RX ring and completes all TX each turn (no copies).
public enum BenchLoop {
    /// The frame the in-memory loops carry (bench-loop, its tests and the
    /// microbenchmarks): Ethernet/IPv4/UDP 198.18.0.1:1024 -> 198.18.1.1:9000.
    public static func udpFrame(size: Int = 64) -> [UInt8] {
        let spec = FrameSpec(dstMAC: MACAddress("02:00:00:00:00:0b")!, srcMAC: MACAddress("02:00:00:00:00:0a")!,
                             src: .v4(IPv4Address("198.18.0.1")!), dst: .v4(IPv4Address("198.18.1.1")!),
                             srcPort: 1024, dstPort: 9000, frameLength: size)
        var b = [UInt8](repeating: 0, count: size)
        _ = b.withUnsafeMutableBytes { FrameBuilder.build(spec, into: $0.baseAddress!) }
        return b
    }

    @inlinable
    public static func time<App: LaneApp>(_ app: App, frame: [UInt8], packets: Int, burst: Int) -> Double {
        let port = InMemoryPort(ringSize: 2048, frameSize: 2048, frameCount: 4096)
        port.setTemplate(frame, copy: false)
        for i in 0..<4096 { frame.withUnsafeBytes { (port.umem + i * 2048).copyMemory(from: $0.baseAddress!, byteCount: frame.count) } }
        var l = InMemoryLane(app: app, port: port, batch: burst)
        for _ in 0..<1000 { port.kernelReceive(burst); _ = l.lane.step(); port.kernelTransmit() }
        let turns = packets / burst
        let t0 = monotonicNanos()
        for _ in 0..<turns {
            port.kernelReceive(burst)
            _ = l.lane.step()
            port.kernelTransmit()
        }
        return Double(monotonicNanos() - t0) / 1e9
    }
}
