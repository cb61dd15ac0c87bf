import LanesCore

/// A lane over an InMemoryPort, stepped by hand: the lane loop without the kernel.
public struct InMemoryLane<App: LaneApp>: ~Copyable {
    public let port: InMemoryPort
    public var lane: Lane<App, XSKInput>
    let stats: StatsArea

    /// `primed`: frames 0..<primed are on the port's fill ring already, as set-up leaves them.
    public init(app: App, port: InMemoryPort, batch: Int = 64, primed: Int = 0, multiBuffer: Bool = false, maxSegments: Int = 18) {
        self.port = port
        stats = StatsArea(lanes: 1)
        lane = Lane(rings: port.takeRings(), app: app, umem: port.umem, frameSize: port.frameSize,
                    frameCount: port.frameCount, primed: primed, batch: batch, counters: stats.counters(0),
                    multiBuffer: multiBuffer, maxSegments: maxSegments)
        lane.refill()
    }

    public var counters: LaneSnapshot { stats.counters(0).snapshot() }

    /// Where every frame is now.
    public var ledger: FrameLedger {
        let o = port.occupancy
        return FrameLedger(total: lane.totalFrames, free: lane.freeFrames, fillRing: o.fill, rxRing: o.rx,
                           inHands: 0, txRing: o.tx, completionRing: o.completion)
    }
}
