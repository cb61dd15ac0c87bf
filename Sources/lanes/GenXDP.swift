import ArgumentParser
import Foundation
import LanesCore
import LanesEngine
import LanesPacket
import LanesReport
import LanesXDP

extension TxPath: ExpressibleByArgument {}
extension RxPath: ExpressibleByArgument {}

/// The generator's XDP paths: live-frames transmit and the XDP receiver, each
/// under the one lifecycle.
enum GenXDP {
    /// Runs the live-frames generator and prints gen's report.
    static func transmit(config: EngineConfig, options: EngineOptions<GenPort>, lanes: [LiveGenLane], choice: TxPathChoice, plan: GenPlan) throws {
        let json = options.json, iface = config.interface
        // --busy-poll and --metrics never get here (TxPathChoice: an obstacle to live
        // frames); --latency holds already: a live-frames lane never sleeps.
        var allowancesAtStart: [String: UInt64]? = nil
        try Lifecycle.run(options.runOptions(), what: "lanes gen --tx xdp (live frames)", setUp: { () throws -> LiveGenerator in
            let gen = try LiveGenerator(interface: iface, lanes: lanes, batch: config.batch)
            // Attached to the sending port, the program passes what arrives there, stays in
            // the kernel's XDP dispatcher between runs (else each run waits for an RCU grace
            // period) and lets ena, mlx5, ice and i40e take redirected frames. A receiver's
            // program already on the port stays, and the lanes run unattached in longer calls.
            gen.unattached = !(try gen.program.attach(interface: iface, mode: config.xdpMode))
            return gen
        }, run: { gen in
            if !json {
                print("lanes gen on \(iface): \(lanes.count) lane(s), tx xdp: live frames (\(choice.reason)), "
                      + (!gen.unattached ? "program attached (\(gen.program.attachedMode?.rawValue ?? "")) on \(iface)"
                                         : "\(iface) has another XDP program: running unattached (each call waits for an RCU grace period)"))
            }
            allowancesAtStart = EC2Shaping.read(interface: iface)
            // The lanes' live report (their RX counters stay 0: live frames receive nothing).
            return try gen.run(duration: options.duration, interval: options.interval, onInterval: options.printInterval)
        }, report: { s in
            var report = Report(gen: plan, interface: iface, durationS: s.durationS, exitReason: s.exitReason)
            (report.bindMode, report.txPath, report.txPathReason) = ("none", "xdp", choice.reason)
            report.setSent(packets: s.txPackets, bytes: s.txBytes, span: Report.sendingSpan(s.lanes.map { ($0.firstTxNs, $0.lastTxNs) }))
            (report.dropTxRingFull, report.kernelRxDropped, report.framesBalanced, report.linkDownEvents) = (0, 0, true, 0)
            report.lanes = zip(s.lanes, lanes).map { l, g in
                var x = Report.Lane(queue: l.queue, core: l.core)
                (x.txPackets, x.txBytes, x.streams, x.rxSigned) = (l.txPackets, l.txBytes, g.plan.streams.count, 0)
                return x
            }
            report.ec2Shaping = EC2Shaping.between(allowancesAtStart, EC2Shaping.read(interface: iface))
            if json { printJSONLine(report) } else { GenCommand.printReport(report) }
        })
    }

    /// `--rx-only --rx xdp`: the signed receiver in XDP on every queue of the port,
    /// until --duration or SIGINT; then gen's receive report.
    static func receive(config: EngineConfig, options: EngineOptions<GenPort>, plan: GenPlan) throws {
        let json = options.json, iface = config.interface, flows = plan.flows
        let refusals = options.busyPoll ? ["--busy-poll: the XDP receiver (--rx xdp) has no socket to busy-poll; drop it or use --rx xsk"] : []
        if options.latency { printError("lanes gen: --latency: the XDP receiver counts in the driver's receive poll, with no lane to keep awake\n") }
        try Lifecycle.run(options.runOptions(), what: "lanes gen --rx-only --rx xdp", refusing: refusals, setUp: {
            try XDPCounter(interface: iface, filter: config.filter, action: .signedReceive,
                           streams: max(flows.count, Signature.trackedStreams), mode: config.xdpMode, force: config.force)
        }, run: { rx in
            if !json {
                print("lanes gen (receive only) on \(iface): counted in XDP on \(rx.queuesAtStart) queue(s), filter '\(config.filter)', "
                      + (plan.expected.map { "\($0) stream(s) expected, " } ?? "") + "stream ids below \(rx.program.streams) tracked")
            }
            var lastCount: UInt64 = 0
            func matched() -> UInt64 { rx.countersByQueue().reduce(0) { $0 + $1.counters.dropped } }
            let outcome = rx.run(duration: options.duration, interval: options.interval) { elapsed, seconds in
                let c = matched()
                let pps = Double(c - lastCount) / seconds
                if json {
                    var line = IntervalLine(elapsedS: elapsed)
                    (line.rxPps, line.txPps, line.rxBps, line.txBps, line.laneRxPps, line.rxPackets) = (pps, 0, 0, 0, [], c)
                    printJSONLine(line)
                } else {
                    print("[\(format2(elapsed))s] rx \(fmtRate(pps, "pps")), \(c) packets")
                }
                lastCount = c
            }
            // Read before the lifecycle detaches the program (its maps go with it).
            return (outcome, rx.program.signedReceive(), rx.countersByQueue())
        }, report: { outcome, got, perQueue in
            var hist = LatencyHistogram()
            hist.add(buckets: got.latencyBuckets, count: got.latencyCount, min: got.latencyMin, max: got.latencyMax, sum: Double(got.latencySum))
            let seen: [Report.SeenStream] = got.streams.map { c in
                var r = StreamRx()
                r.received = c.received; r.duplicates = c.duplicates; r.reordered = c.reordered; r.highest = c.highest
                return .init(rx: r, flow: c.flow, queue: c.queue)
            }
            var report = Report(gen: plan, interface: iface, durationS: outcome.durationS, exitReason: outcome.exitReason)
            (report.bindMode, report.txPath, report.txPathReason, report.rxPath) = ("none", "", "", "xdp")
            report.setSent(packets: 0, bytes: 0, span: nil)
            (report.dropTxRingFull, report.kernelRxDropped, report.framesBalanced) = (0, 0, true)
            report.lanes = perQueue.map { q, c in
                var x = Report.Lane(queue: q, core: -1)
                (x.txPackets, x.txBytes, x.streams, x.rxSigned) = (0, 0, seen.filter { $0.queue == q }.count, c.dropped)
                return x
            }
            report.addReceive(seen, untracked: got.overflowPackets, expected: plan.expected, sent: [], latency: hist, plannedFlows: flows)
            report.fault = outcome.fault
            report.linkDownEvents = outcome.linkDownEvents
            if got.unsignedPackets > 0 && !json { print("rx: \(got.unsignedPackets) matching packets without a Lanes signature (not counted per stream)") }
            if json { printJSONLine(report) } else { GenCommand.printReport(report) }
            try endOnFault(outcome.fault, at: outcome.durationS)
        })
    }
}
