import LanesCore

/// Times the lane loop over an InMemoryPort: the fake kernel puts `burst`
/// packets on the RX ring and completes all TX each turn (no copies).
public enum BenchLoop {
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
