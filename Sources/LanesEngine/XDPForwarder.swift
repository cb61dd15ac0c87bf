import Glibc
import LanesCore
import LanesPacket
import LanesReport
import LanesXDP

/// `lanes fwd --path xdp`: the forwarder in the XDP program itself, as
/// xdp-forward does it. The program on IN looks at each packet in the driver's
/// receive path and sends it out of OUT's devmap entry (or back out by XDP_TX,
/// macswap): no AF_XDP socket, no UMEM, no lane thread, so on a copy-mode device
/// (veth; ena with the stock driver) none of the two copies an AF_XDP forwarder
/// pays. Everything else matches the lanes: the same filter, per-flow policer
/// and FIB code (`.forwardByFIB`'s lookup, then the header check and TTL in
/// XDP), per-queue counters from the program's per-CPU map, read by the same
/// monitor into the same summary, JSON and Prometheus series. OUT holds a
/// program too (the reverse direction's, or one that passes everything): a
/// driver keeps XDP transmit queues for redirected frames only while one is
/// attached (virtio_net, ixgbe, i40e; xdp-forward loads on both ports for it).
public final class XDPForwarder {
    public struct Config {
        public var interface: String
        /// nil: macswap on `interface` alone.
        public var outInterface: String?
        public var bidirectional = false
        public var forward: XDPForwarding
        /// OUT -> IN with `bidirectional` (nil: as `forward`).
        public var reverse: XDPForwarding?
        /// `.routes`: the route file, loaded into each direction's LPM tables.
        public var routes: RouteTable?
        public var filter = LaneFilter.all
        public var xdpMode: XDPMode = .auto
        public var force = false
        public var flowCapBps: UInt64 = 0
        public init(interface: String, outInterface: String?, forward: XDPForwarding) {
            self.interface = interface; self.outInterface = outInterface; self.forward = forward
        }
    }

    public let config: Config
    public let program: XDPProgram
    public let outProgram: XDPProgram?
    /// RX queues of IN (and of OUT) whose counters are read.
    let inQueues: Int, outQueues: Int
    /// The kernel log from set-up on (device resets), opened before the privilege drop.
    let kernelLog = KernelLog()

    public init(_ config: Config) throws(LanesError) {
        try requireRoot(for: "XDP")
        self.config = config
        let name = config.interface
        guard if_nametoindex(name) != 0 else { throw LanesError("interface '\(name)' not found", fix: "see 'ip link', pass --netns NS, or run 'lanes testbed up'") }
        inQueues = try InterfaceInfo.queueCount(name).0
        if case .macswap = config.forward {
            guard config.outInterface == nil else { throw LanesError("--mode macswap works on one port", fix: "drop OUT") }
        } else {
            guard config.outInterface != nil else { throw LanesError("XDP forwarding needs an OUT interface") }
        }
        if let out = config.outInterface {
            guard out != name else { throw LanesError("IN and OUT are both \(name)", fix: "give two interfaces, or use --mode macswap on one") }
            guard if_nametoindex(out) != 0 else {
                throw LanesError("interface '\(out)' not found", fix: "see 'ip link', or pass --netns NS (both ports must be in one namespace)")
            }
            outQueues = try InterfaceInfo.queueCount(out).0
        } else {
            outQueues = 0
        }
        let routes = config.routes?.routes.count ?? 1
        // On each port, the program without frags unless its MTU needs them.
        func frags(_ port: String) -> Bool { (Sysfs.mtu(of: port) ?? 0) > XDPProgram.singleBufferMTU }
        func make(_ f: XDPForwarding, on port: String, to: String?) throws(LanesError) -> XDPProgram {
            let p = try XDPProgram(filter: config.filter, action: .forwardInXDP, flowCapBps: config.flowCapBps, forwarding: f, routes: routes,
                                   frags: frags(port))
            if let to {
                try p.setTxPort(to)
                if case .routes = f, let table = config.routes { try p.loadRoutes(table, egress: to) }
            }
            return p
        }
        program = try make(config.forward, on: name, to: config.outInterface)
        if let out = config.outInterface {
            // Both ways: the reverse direction; one way: a program that takes nothing
            // (no socket is ever registered, so everything passes) for the driver's XDP TX queues.
            outProgram = config.bidirectional ? try make(config.reverse ?? config.forward, on: out, to: name)
                                              : try XDPProgram(filter: config.filter, action: .redirect)
        } else {
            outProgram = nil
        }
        try program.attach(interface: name, mode: config.xdpMode, force: config.force)
        if let outProgram, let out = config.outInterface {
            do throws(LanesError) { try outProgram.attach(interface: out, mode: config.xdpMode, force: config.force) } catch {
                program.detach()
                throw error
            }
        }
    }

    deinit { close() }

    /// Detaches both programs. Safe to call twice.
    public func close() {
        program.detach()
        outProgram?.detach()
    }

    /// One row per RX queue and direction: (queue, direction, counters).
    public func counters() -> [(queue: Int, direction: String?, counters: XDPQueueCounters)] {
        let inName = config.interface
        var rows = (0..<inQueues).map { q in (q, config.outInterface.map { "\(inName)->\($0)" }, program.counters(queue: UInt32(q))) }
        if config.bidirectional, let outProgram, let out = config.outInterface {
            rows += (0..<outQueues).map { q in (q, "\(out)->\(inName)", outProgram.counters(queue: UInt32(q))) }
        }
        return rows
    }

    /// The ports frames leave by, and their tx_dropped now: a veth counts there
    /// the redirected frames its peer could not take (no XDP program or GRO on it).
    var egressPorts: [String] {
        guard let out = config.outInterface else { return [config.interface] }
        return config.bidirectional ? [out, config.interface] : [out]
    }
    static func txDropped(_ port: String) -> UInt64 { Sysfs.read("/sys/class/net/\(port)/statistics/tx_dropped").flatMap(UInt64.init) ?? 0 }

    /// A row of the summary: rx what the filter took, tx what left, drops by cause.
    static func laneSummary(queue: Int, direction: String?, _ x: XDPQueueCounters, _ mode: XDPForwarding) -> RunSummary.LaneSummary {
        var drops: [String: UInt64] = ["drop_policed": x.policed]
        switch mode {
        case .fib: drops["drop_blackhole"] = x.blackhole; drops["drop_too_big"] = x.tooBigDropped; drops["drop_tx_port"] = x.noRoute
        case .routes: drops["drop_ttl"] = x.ttlExpired; drops["drop_bad_header"] = x.badHeader; drops["drop_no_route"] = x.noRoute
        default: drops["drop_tx_port"] = x.noRoute // the devmap refused: no TX port
        }
        return .init(queue: queue, core: -1, direction: direction, rxPackets: x.matched, txPackets: x.forwarded,
                     rxBytes: x.matchedBytes, txBytes: x.forwardedBytes, drops: drops, txKicks: 0, idlePolls: 0,
                     xsk: XSKStatistics(), xdp: x, frames: FrameLedger(total: 0, free: 0, fillRing: 0, rxRing: 0, inHands: 0, txRing: 0, completionRing: 0))
    }

    /// Runs until the duration, a signal or a lost interface, reporting every
    /// `interval` seconds, and sums up (the program stays attached until `close`).
    public func run(duration: Double?, interval: Double, onInterval: (IntervalReport) -> Void) throws(LanesError) -> RunSummary {
        StopSignals.block()
        let allowancesAtStart = EC2Shaping.read(interface: config.interface)
        let dropsAtStart = egressPorts.map(XDPForwarder.txDropped)
        let start = monotonicSeconds()
        var previous = counters()
        let monitor = Monitor(duration: duration, interval: interval, watching: [config.interface] + (config.outInterface.map { [$0] } ?? []))
        var ports = [DeviceWatch.Port(name: config.interface, programID: program.attachedID, queues: [], takesLargerMTU: true)]
        if let outProgram, let out = config.outInterface {
            ports.append(DeviceWatch.Port(name: out, programID: outProgram.attachedID, queues: [], takesLargerMTU: true))
        }
        var watch = RunWatch(ports, log: kernelLog)
        let exitReason = monitor.run(start: start, check: { now in watch.check(now: now, start: start)
        }, tick: { elapsed, seconds in
            let cur = counters()
            let s = max(seconds, 1e-9)
            let rows = zip(previous, cur).map { p, n in
                IntervalReport.Row(queue: n.queue, core: -1, rxPps: Double(n.counters.matched &- p.counters.matched) / s,
                                   txPps: Double(n.counters.forwarded &- p.counters.forwarded) / s,
                                   rxBps: Double(n.counters.matchedBytes &- p.counters.matchedBytes) * 8 / s,
                                   txBps: Double(n.counters.forwardedBytes &- p.counters.forwardedBytes) * 8 / s,
                                   drops: n.counters.dropped)
            }
            var report = IntervalReport(elapsed: elapsed, rows: rows)
            report.totals = (cur.reduce(0) { $0 + $1.counters.matched }, cur.reduce(0) { $0 + $1.counters.forwarded })
            report.residentBytes = ProcessMemory.residentBytes()
            onInterval(report)
            previous = cur
        })
        let elapsed = monotonicSeconds() - start
        let lanes = counters().map { r in
            XDPForwarder.laneSummary(queue: r.queue, direction: r.direction, r.counters,
                                     r.direction.map { $0.hasPrefix(config.interface + "->") } ?? true ? config.forward : (config.reverse ?? config.forward))
        }
        let rss = ProcessMemory.residentBytes()
        var summary = RunSummary(interface: config.interface, bindMode: "none", xdpMode: program.attachedMode?.rawValue ?? "none",
                                 filter: config.filter.description, umemPlacement: "none", framesPerLane: 0, frameSize: 0, umemBytesPerLane: 0,
                                 durationS: elapsed, exitReason: exitReason, processRSSBytes: rss, processBeyondUMEMBytes: rss,
                                 linkDownEvents: watch.link.downEvents, lanes: lanes)
        summary.path = "xdp"
        summary.fault = watch.fault(endedBy: exitReason, monitor)
        summary.egressTxDropped = zip(egressPorts, dropsAtStart).map { $1 <= XDPForwarder.txDropped($0) ? XDPForwarder.txDropped($0) - $1 : 0 }.reduce(0, +)
        summary.ec2Shaping = EC2Shaping.between(allowancesAtStart, EC2Shaping.read(interface: config.interface))
        return summary
    }
}

/// `fwd --path xdp|xsk|auto`: where the forwarder runs.
public enum ForwardPath: String, Sendable, CaseIterable {
    /// In the XDP program (`XDPForwarder`).
    case xdp
    /// The lanes: AF_XDP sockets, one pinned thread per queue.
    case xsk
    /// xdp where nothing needs the lanes and the egress takes redirected frames.
    case auto

    /// The path a run takes, and why in words. `needsLanes` names the first option
    /// given that only the lanes serve (`--impair`, `--pipeline`, `--bind`, ...).
    /// `egressFeatures` are the XDP features (netdev netlink names) of the port
    /// frames leave by, nil where the kernel did not say; `inFeatures` IN's.
    /// A port lacking "redirect-target" takes no redirected frame in native XDP
    /// (a veth says so while its peer has neither an XDP program nor GRO on).
    public static func choose(_ asked: ForwardPath, needsLanes: String?, generic: Bool,
                              inDriver: String, inFeatures: [String]?, egress: String, egressFeatures: [String]?) throws(LanesError) -> (ForwardPath, String) {
        let egressRefuses = !generic && egressFeatures.map { !$0.contains("redirect-target") } == true
        let refusal = "\(egress) takes no redirected frames (its XDP features lack redirect-target\(inDriver == "veth" ? "; a veth takes them while its peer has an XDP program or GRO on: ethtool -K PEER gro on" : ""))"
        switch asked {
        case .xsk:
            return (.xsk, "asked for")
        case .xdp:
            if let needsLanes {
                throw LanesError("--path xdp forwards in the XDP program: \(needsLanes) needs the lanes", fix: "use --path xsk (or auto), or drop \(needsLanes)")
            }
            if egressRefuses { throw LanesError("--path xdp: \(refusal)", fix: "use --path xsk, or --xdp generic") }
            return (.xdp, "asked for")
        case .auto:
            if let needsLanes { return (.xsk, "auto: \(needsLanes) needs the lanes") }
            if egressRefuses { return (.xsk, "auto: \(refusal)") }
            if inFeatures?.contains("zero-copy") == true {
                return (.xdp, "auto: \(inDriver) offers AF_XDP zero-copy, but no measurement here shows zero-copy lanes ahead of forwarding in XDP; --path xsk takes the lanes")
            }
            return (.xdp, "auto: \(inDriver) has no AF_XDP zero-copy, so the lanes would copy every packet twice; forwarding in XDP copies none")
        }
    }
}
