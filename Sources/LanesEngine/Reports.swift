import LanesCore
import LanesReport
import LanesXDP

/// Rates over one monitor interval.
public struct IntervalReport {
    public struct Row: Codable, Sendable {
        public var queue: Int, core: Int
        public var rxPps: Double, txPps: Double, rxBps: Double, txBps: Double
        public var drops: UInt64
    }
    public var elapsed: Double
    public var rows: [Row]
    public var total: Row
    /// Cumulative packets so far, all lanes.
    public var totals: (rx: UInt64, tx: UInt64)
    /// Frames neither free nor in a ring at the sample (in the lanes' hands, or lost).
    public var framesUnaccounted = 0
    public var residentBytes = 0

    /// From rows already in rates (the XDP forwarder's queues).
    public init(elapsed: Double, rows: [Row]) {
        self.elapsed = elapsed
        self.rows = rows
        totals = (0, 0)
        total = Row(queue: -1, core: -1, rxPps: rows.reduce(0) { $0 + $1.rxPps }, txPps: rows.reduce(0) { $0 + $1.txPps },
                    rxBps: rows.reduce(0) { $0 + $1.rxBps }, txBps: rows.reduce(0) { $0 + $1.txBps },
                    drops: rows.reduce(0) { $0 + $1.drops })
    }

    public init(elapsed: Double, seconds: Double, lanes: [(Int, Int)], previous: [LaneSnapshot], current: [LaneSnapshot]) {
        self.elapsed = elapsed
        var rows: [Row] = []
        for (i, (q, c)) in lanes.enumerated() {
            let p = previous[i], n = current[i]
            func rate(_ k: LaneCounter) -> Double { Double(n[k] &- p[k]) / max(seconds, 1e-9) }
            rows.append(Row(queue: q, core: c, rxPps: rate(.rxPackets), txPps: rate(.txPackets),
                            rxBps: rate(.rxBytes) * 8, txBps: rate(.txBytes) * 8, drops: n.drops))
        }
        self.rows = rows
        totals = (current.reduce(0) { $0 + $1[.rxPackets] }, current.reduce(0) { $0 + $1[.txPackets] })
        total = Row(queue: -1, core: -1, rxPps: rows.reduce(0) { $0 + $1.rxPps }, txPps: rows.reduce(0) { $0 + $1.txPps },
                    rxBps: rows.reduce(0) { $0 + $1.rxBps }, txBps: rows.reduce(0) { $0 + $1.txBps },
                    drops: rows.reduce(0) { $0 + $1.drops })
    }

    /// A table: a row per lane with pps and bps, then totals.
    public var table: String {
        func f(_ r: Row, _ label: String) -> String {
            "\(label.padding(8)) \(fmtRate(r.rxPps, "pps").padding(12)) \(fmtRate(r.rxBps, "bps").padding(12)) \(fmtRate(r.txPps, "pps").padding(12)) \(fmtRate(r.txBps, "bps").padding(12)) \(r.drops)"
        }
        var s = "[\(String(format1(elapsed)))s] lane     rx           rx bits      tx           tx bits      drops\n"
        for r in rows { s += "        " + f(r, "q\(r.queue)/c\(r.core)") + "\n" }
        s += "        " + f(total, "total")
        return s
    }
}

func format1(_ v: Double) -> String {
    let x = (v * 10).rounded() / 10
    return "\(x)"
}

/// 1.23M pps style.
public func fmtRate(_ v: Double, _ unit: String) -> String {
    let (d, p): (Double, String) = v >= 1e9 ? (1e9, "G") : v >= 1e6 ? (1e6, "M") : v >= 1e3 ? (1e3, "k") : (1, "")
    let x = (v / d * 100).rounded() / 100
    return "\(x)\(p) \(unit)"
}

extension String {
    func padding(_ n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
}

/// The end-of-run result of a run of lanes (the engine, the pipeline, the XDP
/// forwarder); `--json` prints its `report`.
public struct RunSummary: Sendable {
    public struct LaneSummary: Sendable {
        public var queue: Int, core: Int
        /// "IN->OUT" for two-port forwarding.
        public var direction: String?
        public var rxPackets: UInt64, txPackets: UInt64, rxBytes: UInt64, txBytes: UInt64
        public var drops: [String: UInt64]
        public var txKicks: UInt64, idlePolls: UInt64
        public var xsk: XSKStatistics
        public var xdp: XDPQueueCounters
        public var frames: FrameLedger
    }
    public var interface: String
    public var bindMode: String
    public var xdpMode: String
    public var filter: String
    public var umemPlacement: String
    public var framesPerLane: Int
    public var frameSize: Int
    public var umemBytesPerLane: Int
    public var durationS: Double
    public var exitReason: ExitReason
    public var processRSSBytes: Int
    public var processBeyondUMEMBytes: Int
    public var linkDownEvents: Int = 0
    /// What ended the run with exit reason "fault" (`DeviceWatch`), in words.
    public var fault: String? = nil
    public var lanes: [LaneSummary]
    /// CPU seconds the process used (all threads, user + system), at the summary.
    public var cpuS: Double = processCPUSeconds()
    /// ENA's allowance counters' rises over the run (nil, and absent from the JSON, off ena).
    public var ec2Shaping: EC2Shaping? = nil
    /// Sockets bound with XDP_USE_SG (AF_XDP multi-buffer: packets across frames).
    public var multiBuffer = false
    /// "xsk": the lanes (AF_XDP sockets); "xdp": forwarded in the XDP program
    /// (`fwd --path xdp`; a lane is then an RX queue, rx what the filter took and tx what left).
    public var path = "xsk"
    /// `--path xdp`: the rise of the egress ports' tx_dropped over the run (a veth
    /// counts there the redirected frames its peer could not take).
    public var egressTxDropped: UInt64? = nil
    public var rxPackets: UInt64 { lanes.reduce(0) { $0 + $1.rxPackets } }
    public var txPackets: UInt64 { lanes.reduce(0) { $0 + $1.txPackets } }
    public var rxBytes: UInt64 { lanes.reduce(0) { $0 + $1.rxBytes } }
    public var txBytes: UInt64 { lanes.reduce(0) { $0 + $1.txBytes } }
    public var framesBalanced: Bool { lanes.allSatisfy { $0.frames.balanced } }

    /// The run's report (the keys `--json` has always printed for it).
    public var report: Report {
        var r = Report(interface: interface, durationS: durationS, exitReason: exitReason)
        r.bindMode = bindMode; r.xdpMode = xdpMode; r.filter = filter; r.umemPlacement = umemPlacement
        r.framesPerLane = framesPerLane; r.frameSize = frameSize; r.umemBytesPerLane = umemBytesPerLane
        r.processRssBytes = processRSSBytes; r.processBeyondUmemBytes = processBeyondUMEMBytes
        r.linkDownEvents = linkDownEvents; r.fault = fault; r.cpuS = cpuS; r.ec2Shaping = ec2Shaping
        r.multiBuffer = multiBuffer; r.path = path; r.egressTxDropped = egressTxDropped
        r.lanes = lanes.map { l in
            var x = Report.Lane(queue: l.queue, core: l.core)
            x.direction = l.direction
            x.rxPackets = l.rxPackets; x.txPackets = l.txPackets; x.rxBytes = l.rxBytes; x.txBytes = l.txBytes
            x.drops = l.drops; x.txKicks = l.txKicks; x.idlePolls = l.idlePolls; x.xsk = l.xsk; x.xdp = l.xdp; x.frames = l.frames
            return x
        }
        r.rxPackets = rxPackets; r.txPackets = txPackets; r.rxBytes = rxBytes; r.txBytes = txBytes
        r.rxPps = Double(rxPackets) / max(durationS, 1e-9)
        r.txPps = Double(txPackets) / max(durationS, 1e-9)
        r.framesBalanced = framesBalanced
        var drops: [String: UInt64] = [:]
        for l in lanes { for (k, v) in l.drops { drops[k, default: 0] += v } }
        r.drops = drops
        r.xsk = lanes.reduce(XSKStatistics()) { $0 + $1.xsk }
        r.xdp = lanes.reduce(XDPQueueCounters()) { $0 + $1.xdp }
        return r
    }
}

extension RunSummary.LaneSummary {
    /// One lane's part of the summary, from its counters at the end.
    init(queue: Int, core: Int, direction: String?, counters s: LaneSnapshot, xsk: XSKStatistics, xdp: XDPQueueCounters, frames: FrameLedger) {
        var drops: [String: UInt64] = [:]
        for c in LaneCounter.allCases where c.isDrop { drops[c.name] = s[c] }
        self.init(queue: queue, core: core, direction: direction, rxPackets: s[.rxPackets], txPackets: s[.txPackets],
                  rxBytes: s[.rxBytes], txBytes: s[.txBytes], drops: drops, txKicks: s[.txKicks], idlePolls: s[.idlePolls],
                  xsk: xsk, xdp: xdp, frames: frames)
    }
}

extension RunSummary {
    /// The one way a run of lanes on `config.interface` is summed up (the engine
    /// and the pipeline): `umemBytes` is every UMEM's bytes together.
    init(config: EngineConfig, bindMode: String, program: XDPProgram, umemPlacement: String, umemBytes: Int,
         duration: Double, exitReason: ExitReason, linkDownEvents: Int = 0, multiBuffer: Bool, lanes: [LaneSummary]) {
        let rss = ProcessMemory.residentBytes()
        self.init(interface: config.interface, bindMode: bindMode, xdpMode: program.attachedMode?.rawValue ?? "none",
                  filter: config.filter.description, umemPlacement: umemPlacement,
                  framesPerLane: config.umem.frameCount, frameSize: config.umem.frameSize,
                  umemBytesPerLane: config.umem.bytes, durationS: duration, exitReason: exitReason,
                  processRSSBytes: rss, processBeyondUMEMBytes: max(0, rss - umemBytes), linkDownEvents: linkDownEvents, lanes: lanes)
        self.multiBuffer = multiBuffer
    }
}
