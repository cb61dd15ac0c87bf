import ArgumentParser
import Glibc
import LanesCore
import LanesEngine
import LanesLab
import LanesReport
import LanesXDP

/// An XDP_DROP sink that counts matching packets per queue in XDP itself: the
/// reference receiver for generator and forwarder measurements.
struct SinkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sink",
        abstract: "Count and drop matching packets in XDP (no AF_XDP), per RX queue.",
        discussion: "Example: lanes sink s0 --netns lanes-sink --filter 'udp dport 9000' --duration 5 --json")
    @Argument(help: "Interface (default: the testbed's sink:s0).") var interface: String?
    @Option(help: "Network namespace of the interface (default with no interface: NAME-sink).") var netns: String?
    @Option(help: "Testbed name used when no interface is given.") var testbed = Testbed.defaultName
    @Option(help: "Which packets to count and drop; the rest pass to the kernel.") var filter = "udp"
    @Option(help: "XDP attach mode: native, generic, auto.") var xdp: XDPMode = .auto
    @Flag(help: "Count and pass instead of drop.") var pass = false
    @Flag(help: "Replace an XDP program that is not Lanes'.") var force = false
    @Option(help: "Run for S seconds (default: until SIGINT/SIGTERM).") var duration: Double?
    @Option(help: "Seconds between live reports (0: none).") var interval: Double = 1
    @Flag(help: "Print JSON.") var json = false
    @Flag(help: "Receive with the kernel stack instead of XDP: one UDP socket per --cores core on --port (SO_REUSEPORT, recvmmsg, pinned threads); the device under test of 'lanes scale --dut kernel'.") var kernel = false
    @Option(help: "--kernel: cores, one socket each (default: every online CPU).") var cores: String?
    @Option(help: "--kernel: the UDP port.") var port: UInt16 = 9000

    func run() throws {
        try requireRoot(for: "the XDP sink")
        let tb = Testbed(name: testbed)
        let iface = interface ?? tb.s0.interface
        if let ns = netns ?? (interface == nil ? tb.sink : nil) { try NetworkNamespace.enterWithSysfs(ns) }
        if kernel { return try runKernel(iface) }
        if cores != nil { throw LanesError("--cores works with --kernel", fix: "the XDP sink counts on every queue") }
        let parsed: LaneFilter
        do { parsed = try LaneFilter(parsing: filter) } catch { throw LanesError("bad --filter: \(error)") }
        let pass = self.pass, json = self.json
        try Lifecycle.run(RunOptions(duration: duration, interval: interval, json: json), what: "lanes sink",
                          setUp: { try XDPCounter(interface: iface, filter: parsed, action: pass ? .countAndPass : .sink, mode: xdp, force: force) },
                          run: { sink in
            func count(_ c: XDPQueueCounters) -> UInt64 { pass ? c.passed : c.dropped }
            func total() -> UInt64 { count(sink.countersByQueue().reduce(XDPQueueCounters()) { $0 + $1.counters }) }
            if !json { print("lanes sink on \(iface): \(sink.queuesAtStart) queue(s), filter '\(parsed)', xdp \(sink.program.attachedMode?.rawValue ?? "?")") }
            var lastTotal: UInt64 = 0
            let outcome = sink.run(duration: duration, interval: interval) { elapsed, seconds in
                let n = total()
                let pps = Double(n - lastTotal) / seconds
                if json {
                    var line = IntervalLine(elapsedS: elapsed)
                    line.pps = pps
                    printJSONLine(line)
                } else {
                    print("[\(format2(elapsed))s] \(fmtRate(pps, "pps")), \(n) packets")
                }
                lastTotal = n
            }
            // Read before the lifecycle detaches the program (its maps go with it).
            return (outcome, sink.countersByQueue())
        }, report: { outcome, perQueue in
            let per = perQueue.map { q, c in
                var l = Report.Lane(queue: q)
                l.packets = pass ? c.passed : c.dropped
                l.bytes = c.matchedBytes
                return l
            }
            let n = per.reduce(0) { $0 + ($1.packets ?? 0) }
            var r = Report(interface: iface, durationS: outcome.durationS, exitReason: outcome.exitReason)
            r.packets = n
            r.bytes = per.reduce(0) { $0 + ($1.bytes ?? 0) }
            r.pps = Double(n) / max(outcome.durationS, 1e-9)
            r.queues = per
            r.fault = outcome.fault
            r.linkDownEvents = outcome.linkDownEvents
            if json { printJSONLine(r) } else {
                print("sink: \(n) packets in \(format2(outcome.durationS)) s (\(fmtRate(r.pps ?? 0, "pps"))); per queue: " + per.map { "q\($0.queue ?? 0) \($0.packets ?? 0)" }.joined(separator: ", "))
            }
            try endOnFault(outcome.fault, at: outcome.durationS)
        })
    }

    /// `--kernel`: per-socket counts from pinned recvmmsg threads.
    func runKernel(_ iface: String) throws {
        var coreList = Array(0..<Sysfs.onlineCPUs())
        if let cores {
            guard let c = IndexList.parse(cores), !c.isEmpty else { throw LanesError("bad --cores '\(cores)'", fix: "use e.g. 0-1") }
            coreList = c
        }
        guard if_nametoindex(iface) != 0 else { throw LanesError("interface '\(iface)' not found", fix: "see 'ip link', or pass --netns NS") }
        let json = self.json, port = self.port
        try Lifecycle.run(RunOptions(duration: duration, interval: interval, json: json), what: "lanes sink --kernel",
                          setUp: { try KernelReceiver(port: port, cores: coreList) },
                          run: { rx in
            let before = KernelReceiver.udpErrors()
            let stop = StopFlag()
            let threads = try rx.start(stop: stop)
            var lastTotal: UInt64 = 0
            func total() -> UInt64 { (0..<coreList.count).reduce(0) { $0 + rx.stats.counters($1).snapshot()[.rxPackets] } }
            if !json { print("lanes sink --kernel on \(iface): UDP port \(port), \(coreList.count) socket(s) on cores \(coreList.map(String.init).joined(separator: ","))") }
            let start = monotonicSeconds()
            let reason = Monitor(duration: duration, interval: interval, poll: 0.05).run(start: start, tick: { elapsed, seconds in
                let n = total()
                let pps = Double(n - lastTotal) / seconds
                if json {
                    var line = IntervalLine(elapsedS: elapsed)
                    (line.rxPps, line.rxPackets) = (pps, n)
                    printJSONLine(line)
                } else { print("[\(format2(elapsed))s] \(fmtRate(pps, "pps")), \(n) packets") }
                lastTotal = n
            })
            stop.raise()
            threads.forEach { $0.join() }
            let elapsed = monotonicSeconds() - start
            let after = KernelReceiver.udpErrors()
            var r = Report(interface: iface, durationS: elapsed, exitReason: reason)
            r.bindMode = "kernel"
            r.lanes = coreList.indices.map { i in
                let s = rx.stats.counters(i).snapshot()
                var l = Report.Lane(core: coreList[i])
                (l.socket, l.rxPackets, l.rxBytes) = (i, s[.rxPackets], s[.rxBytes])
                return l
            }
            let n = r.lanes!.reduce(0) { $0 + ($1.rxPackets ?? 0) }
            r.packets = n
            r.pps = Double(n) / max(elapsed, 1e-9)
            (r.udpRcvbufErrors, r.udpInErrors) = (after.rcvbuf - before.rcvbuf, after.inErrors - before.inErrors)
            r.cpuS = processCPUSeconds()
            return r
        }, report: { r in
            if json { printJSONLine(r) } else {
                print("sink --kernel: \(r.packets ?? 0) datagrams in \(format2(r.durationS)) s (\(fmtRate(r.pps ?? 0, "pps"))); per socket: "
                      + (r.lanes ?? []).map { "core \($0.core ?? 0) \($0.rxPackets ?? 0)" }.joined(separator: ", ") + "; UDP receive-buffer drops \(r.udpRcvbufErrors ?? 0)")
            }
        })
    }
}
