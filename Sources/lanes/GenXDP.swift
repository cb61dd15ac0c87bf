import ArgumentParser
import Foundation
import LanesCore
import LanesEngine
import LanesPacket
import LanesXDP

/// `lanes gen --tx auto|xsk|xdp`.
enum TxPath: String, ExpressibleByArgument, CaseIterable, Sendable { case auto, xsk, xdp }
/// `lanes gen --rx xsk|xdp`.
enum RxPath: String, ExpressibleByArgument, CaseIterable, Sendable { case xsk, xdp }

/// The generator's XDP paths: live-frames transmit and the XDP receiver.
enum GenXDP {
    struct Choice { var path: TxPath; var reason: String }

    /// Which transmit path runs, and why. `--tx xdp` with an obstacle is an error
    /// naming it; `auto` takes xsk where AF_XDP binds zero-copy, else xdp unless
    /// something stands in its way (then xsk, saying what).
    static func choose(requested: TxPath, interface: String, queues: [Int], cores: [Int], sizes: [Int],
                       sameportReceive: Bool, metrics: Bool, rxOnly: Bool) throws -> Choice {
        if rxOnly { return Choice(path: .xsk, reason: "receive only") }
        if requested == .xsk { return Choice(path: .xsk, reason: "asked for with --tx xsk") }
        let driver = (try? Ethtool(interface).driverInfo().driver) ?? "?"
        let features = XDPFeatures.query(ifindex: if_nametoindex(interface))
        var obstacles: [String] = []
        if sameportReceive { obstacles.append("--rx receives on the sending port's AF_XDP lanes") }
        if metrics { obstacles.append("--metrics serves the AF_XDP engine's counters") }
        if let big = sizes.max(), big > LiveFramesProgram.maxFrameBytes {
            obstacles.append("a \(big)-byte frame does not fit a live frame (at most \(LiveFramesProgram.maxFrameBytes))")
        }
        if let f = features {
            if !f.contains(.redirectTarget) {
                // veth advertises ndo_xdp_xmit only while its peer has NAPI: an XDP program or GRO.
                obstacles.append(driver == "veth"
                    ? "\(interface)'s veth peer has no XDP program and no GRO, so \(interface) takes no redirected frames (start the receiver first, or 'ethtool -K PEER gro on' in its namespace)"
                    : "\(driver) cannot be the target of a redirect (no ndo_xdp_xmit)")
            }
        } else {
            obstacles.append("the kernel does not report XDP features (netdev netlink family missing)")
        }
        if Set(cores).count != cores.count { obstacles.append("lanes share a core (live frames run one lane per core)") }
        if driver == "veth" {
            // veth_xdp_xmit puts a frame on the peer's RX queue smp_processor_id() % queues:
            // a lane's core decides its queue (the testbed's two ends have equal queue counts).
            let n = (try? InterfaceInfo.queueCount(interface).rx) ?? 1
            if let (q, c) = zip(queues, cores).first(where: { $0.1 % n != $0.0 }) {
                obstacles.append("on veth a redirected frame lands on queue CPU % \(n): the lane for queue \(q) on core \(c) would land on queue \(c % n)")
            }
        }
        if obstacles.isEmpty {
            do {
                let probe = try LiveFramesProgram(slots: 1, streams: 1).probe()
                if probe < 0 { obstacles.append("the kernel does not run XDP live frames (\(String(cString: strerror(-probe))); Linux 5.18+)") }
            } catch {
                obstacles.append("the live-frames program does not load: \(error)")
            }
        }
        if requested == .xdp {
            if let first = obstacles.first { throw LanesError("--tx xdp: \(first)", fix: "use --tx xsk or --tx auto") }
            return Choice(path: .xdp, reason: "asked for with --tx xdp")
        }
        if let f = features, f.contains(.zeroCopy) { return Choice(path: .xsk, reason: "AF_XDP binds zero-copy on \(driver)") }
        if let first = obstacles.first { return Choice(path: .xsk, reason: first) }
        return Choice(path: .xdp, reason: "AF_XDP runs in copy mode on \(driver); live frames build no skb per packet")
    }

    /// Runs the live-frames generator and prints gen's report.
    static func transmit(config: EngineConfig, options: EngineOptions<GenPort>, lanes: [LiveGenLane], choice: Choice, flows: [FlowKey],
                         sizes: [Int], requestedPps: Double?, requestedBps: Double?) throws {
        let gen = try LiveGenerator(interface: config.interface, lanes: lanes, batch: config.batch)
        // Attached to the sending port, the program passes what arrives there, stays in
        // the kernel's XDP dispatcher between runs (else each run waits for an RCU grace
        // period) and lets ena, mlx5, ice and i40e take redirected frames. A receiver's
        // program already on the port stays, and the lanes run unattached in longer calls.
        let attached = try gen.program.attach(interface: config.interface, mode: config.xdpMode)
        gen.unattached = !attached
        defer { gen.program.detach() }
        try Privileges.keepOnlyNetAdmin()
        let json = options.json
        if !json {
            print("lanes gen on \(config.interface): \(lanes.count) lane(s), tx xdp: live frames (\(choice.reason)), "
                  + (attached ? "program attached (\(gen.program.attachedMode?.rawValue ?? "")) on \(config.interface)"
                              : "\(config.interface) has another XDP program: running unattached (each call waits for an RCU grace period)"))
        }
        let tty = isatty(1) == 1
        let allowancesAtStart = EC2Shaping.read(interface: config.interface)
        let s = try gen.run(duration: options.duration, interval: options.interval, onInterval: { r in
            if json {
                printJSONLine(IntervalLine(elapsedS: r.elapsed, rxPps: 0, txPps: r.total.txPps, rxBps: 0, txBps: r.total.txBps,
                                           laneRxPps: r.rows.map(\.rxPps), rxPackets: 0, txPackets: r.totals.tx))
            } else {
                if tty { print("\u{1B}[2J\u{1B}[H", terminator: "") }
                print(r.table)
            }
        })
        let span = GenCommand.Report.sendingSpan(s.lanes.map { ($0.firstTxNs, $0.lastTxNs) })
        let d = max(span ?? s.durationS, 1e-9)
        var report = GenCommand.Report(
            interface: config.interface, bindMode: "none", txPath: "xdp", txPathReason: choice.reason, rxPath: nil,
            flows: flows.count, sizes: Array(Set(sizes)).sorted(), durationS: s.durationS, sendingS: span, exitReason: s.exitReason,
            txPackets: s.txPackets, txBytes: s.txBytes, txPps: Double(s.txPackets) / d, txBps: Double(s.txBytes) * 8 / d,
            requestedPps: requestedPps, requestedBps: requestedBps, dropTxRingFull: 0, kernelRxDropped: 0,
            lanes: zip(s.lanes, lanes).map { l, g in .init(queue: l.queue, core: l.core, txPackets: l.txPackets, txBytes: l.txBytes, streams: g.plan.streams.count, rxSigned: 0) },
            framesBalanced: true)
        report.ec2Shaping = EC2Shaping.between(allowancesAtStart, EC2Shaping.read(interface: config.interface))
        if json { printJSONLine(report) } else { GenCommand.printReport(report) }
    }

    /// `--rx-only --rx xdp`: the signed receiver in XDP on every queue of the port,
    /// until --duration or SIGINT; then gen's receive report.
    static func receive(config: EngineConfig, options: EngineOptions<GenPort>, flows: [FlowKey], expected: Int?, sizes: [Int]) throws {
        let prog = try XDPProgram(filter: config.filter, action: .signedReceive, streams: max(flows.count, Signature.trackedStreams))
        try prog.attach(interface: config.interface, mode: config.xdpMode, force: config.force)
        defer { prog.detach() }
        let log = KernelLog() // before the privileges go
        try Privileges.keepOnlyNetAdmin()
        StopSignals.block()
        let (rxQueues, _) = try InterfaceInfo.queueCount(config.interface)
        let json = options.json
        if !json {
            print("lanes gen (receive only) on \(config.interface): counted in XDP on \(rxQueues) queue(s), filter '\(config.filter)', "
                  + (expected.map { "\($0) stream(s) expected, " } ?? "") + "stream ids below \(prog.streams) tracked")
        }
        var lastCount: UInt64 = 0
        func matched() -> UInt64 { prog.countersByQueue(atLeast: rxQueues).reduce(0) { $0 + $1.counters.dropped } }
        let start = monotonicSeconds()
        let monitor = Monitor(duration: options.duration, interval: options.interval, poll: 0.05, watching: [config.interface])
        var watch = RunWatch([DeviceWatch.Port(name: config.interface, programID: prog.attachedID, queues: [], takesLargerMTU: true)], log: log)
        let exitReason = monitor.run(start: start, check: { now in watch.check(now: now, start: start) }, tick: { elapsed, seconds in
            let c = matched()
            let pps = Double(c - lastCount) / seconds
            if json {
                printJSONLine(IntervalLine(elapsedS: elapsed, rxPps: pps, txPps: 0, rxBps: 0, txBps: 0, laneRxPps: [], rxPackets: c))
            } else {
                print("[\(format2(elapsed))s] rx \(fmtRate(pps, "pps")), \(c) packets")
            }
            lastCount = c
        })
        let elapsed = monotonicSeconds() - start
        let got = prog.signedReceive()
        let perQueue = prog.countersByQueue(atLeast: rxQueues)
        prog.detach()
        var hist = LatencyHistogram()
        hist.add(buckets: got.latencyBuckets, count: got.latencyCount, min: got.latencyMin, max: got.latencyMax, sum: Double(got.latencySum))
        let seen: [GenCommand.Report.SeenStream] = got.streams.map { c in
            var r = StreamRx()
            r.received = c.received; r.duplicates = c.duplicates; r.reordered = c.reordered; r.highest = c.highest
            return .init(rx: r, flow: c.flow, queue: c.queue)
        }
        var report = GenCommand.Report(
            interface: config.interface, bindMode: "none", txPath: "", txPathReason: "", rxPath: "xdp",
            flows: flows.count, sizes: Array(Set(sizes)).sorted(), durationS: elapsed, sendingS: nil, exitReason: exitReason,
            txPackets: 0, txBytes: 0, txPps: 0, txBps: 0, requestedPps: nil, requestedBps: nil, dropTxRingFull: 0, kernelRxDropped: 0,
            lanes: perQueue.map { q, c in
                .init(queue: q, core: -1, txPackets: 0, txBytes: 0, streams: seen.filter { $0.queue == q }.count, rxSigned: c.dropped)
            },
            framesBalanced: true)
        report.addReceive(seen, untracked: got.overflowPackets, expected: expected, sent: [], latency: hist, plannedFlows: flows)
        report.fault = watch.fault(endedBy: exitReason, monitor)
        report.linkDownEvents = watch.link.downEvents
        if got.unsignedPackets > 0 && !json { print("rx: \(got.unsignedPackets) matching packets without a Lanes signature (not counted per stream)") }
        if json { printJSONLine(report) } else { GenCommand.printReport(report) }
        try endOnFault(report.fault, at: elapsed)
    }
}
