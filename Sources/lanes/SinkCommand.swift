import ArgumentParser
import Glibc
import LanesCore
import LanesEngine
import LanesLab
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

    struct Result: Encodable {
        var interface: String
        var durationS: Double
        var packets: UInt64
        var bytes: UInt64
        var pps: Double
        var queues: [QueueCount]
        var exitReason: ExitReason
        /// The device fault that ended the run, in words (`DeviceWatch`), and the link's falls.
        var fault: String?
        var linkDownEvents: Int
    }
    struct QueueCount: Encodable { var queue: Int; var packets: UInt64; var bytes: UInt64 }

    func run() throws {
        try requireRoot(for: "the XDP sink")
        let tb = Testbed(name: testbed)
        let iface = interface ?? tb.s0.interface
        if let ns = netns ?? (interface == nil ? tb.sink : nil) { try NetworkNamespace.enterWithSysfs(ns) }
        if kernel { return try runKernel(iface) }
        if cores != nil { throw LanesError("--cores works with --kernel", fix: "the XDP sink counts on every queue") }
        let parsed: LaneFilter
        do { parsed = try LaneFilter(parsing: filter) } catch { throw LanesError("bad --filter: \(error)") }
        let (rxq, _) = try InterfaceInfo.queueCount(iface)
        StopSignals.block()
        let prog = try XDPProgram(filter: parsed, action: pass ? .countAndPass : .sink)
        try prog.attach(interface: iface, mode: xdp, force: force)
        let log = KernelLog() // before the privileges go
        do { try Privileges.keepOnlyNetAdmin() } catch { prog.detach(); throw error }
        var lastTotal: UInt64 = 0
        // Every queue, those 'ethtool -L' adds during the run included.
        func total() -> XDPQueueCounters { prog.countersByQueue(atLeast: rxq).reduce(XDPQueueCounters()) { $0 + $1.counters } }
        func count(_ c: XDPQueueCounters) -> UInt64 { pass ? c.passed : c.dropped }
        if !json { print("lanes sink on \(iface): \(rxq) queue(s), filter '\(parsed)', xdp \(prog.attachedMode?.rawValue ?? "?")") }
        let start = monotonicSeconds()
        let monitor = Monitor(duration: duration, interval: interval, watching: [iface])
        // Counted in XDP on every queue: no socket holds one, and one added is counted too.
        var watch = RunWatch([DeviceWatch.Port(name: iface, programID: prog.attachedID, queues: [], takesLargerMTU: true)], log: log)
        let reason = monitor.run(start: start, check: { now in watch.check(now: now, start: start) }, tick: { elapsed, seconds in
            let n = count(total())
            let line = "[\(format2(elapsed))s] \(fmtRate(Double(n - lastTotal) / seconds, "pps")), \(n) packets"
            if json { printJSONLine(["elapsed_s": elapsed, "pps": Double(n - lastTotal) / seconds]) } else { print(line) }
            lastTotal = n
        })
        let elapsed = monotonicSeconds() - start
        let per = prog.countersByQueue(atLeast: rxq).map { q, c in QueueCount(queue: q, packets: count(c), bytes: c.matchedBytes) }
        prog.detach()
        let n = per.reduce(0) { $0 + $1.packets }
        let r = Result(interface: iface, durationS: elapsed, packets: n, bytes: per.reduce(0) { $0 + $1.bytes },
                       pps: Double(n) / max(elapsed, 1e-9), queues: per, exitReason: reason,
                       fault: watch.fault(endedBy: reason, monitor), linkDownEvents: watch.link.downEvents)
        if json { printJSONLine(r) } else {
            print("sink: \(n) packets in \(format2(elapsed)) s (\(fmtRate(r.pps, "pps"))); per queue: " + per.map { "q\($0.queue) \($0.packets)" }.joined(separator: ", "))
        }
        try endOnFault(r.fault, at: elapsed)
    }

    /// `--kernel`: per-socket counts from pinned recvmmsg threads.
    func runKernel(_ iface: String) throws {
        let duration = self.duration ?? .infinity
        guard duration > 0 else { throw LanesError("bad --duration \(duration)", fix: "give seconds > 0") }
        var coreList = Array(0..<Sysfs.onlineCPUs())
        if let cores {
            guard let c = IndexList.parse(cores), !c.isEmpty else { throw LanesError("bad --cores '\(cores)'", fix: "use e.g. 0-1") }
            coreList = c
        }
        guard if_nametoindex(iface) != 0 else { throw LanesError("interface '\(iface)' not found", fix: "see 'ip link', or pass --netns NS") }
        let rx = try KernelReceiver(port: port, cores: coreList)
        try Privileges.keepOnlyNetAdmin()
        StopSignals.block()
        let before = KernelReceiver.udpErrors()
        let stop = StopFlag()
        let threads = try rx.start(stop: stop)
        var lastTotal: UInt64 = 0
        func total() -> UInt64 { (0..<coreList.count).reduce(0) { $0 + rx.stats.counters($1).snapshot()[.rxPackets] } }
        if !json { print("lanes sink --kernel on \(iface): UDP port \(port), \(coreList.count) socket(s) on cores \(coreList.map(String.init).joined(separator: ","))") }
        let start = monotonicSeconds()
        let reason = Monitor(duration: duration.isFinite ? duration : nil, interval: interval, poll: 0.05).run(start: start, tick: { elapsed, seconds in
            let n = total()
            let pps = Double(n - lastTotal) / seconds
            if json { printJSONLine(KernelInterval(elapsedS: elapsed, rxPps: pps, rxPackets: n)) } else { print("[\(format2(elapsed))s] \(fmtRate(pps, "pps")), \(n) packets") }
            lastTotal = n
        })
        stop.raise()
        threads.forEach { $0.join() }
        let elapsed = monotonicSeconds() - start
        let after = KernelReceiver.udpErrors()
        let per = coreList.indices.map { i in
            let s = rx.stats.counters(i).snapshot()
            return KernelSocket(socket: i, core: coreList[i], rxPackets: s[.rxPackets], rxBytes: s[.rxBytes])
        }
        let n = per.reduce(0) { $0 + $1.rxPackets }
        let r = KernelResult(interface: iface, bindMode: "kernel", durationS: elapsed, packets: n, pps: Double(n) / max(elapsed, 1e-9),
                             udpRcvbufErrors: after.rcvbuf - before.rcvbuf, udpInErrors: after.inErrors - before.inErrors,
                             lanes: per, exitReason: reason)
        if json { printJSONLine(r) } else {
            print("sink --kernel: \(n) datagrams in \(format2(elapsed)) s (\(fmtRate(r.pps, "pps"))); per socket: " + per.map { "core \($0.core) \($0.rxPackets)" }.joined(separator: ", ") + "; UDP receive-buffer drops \(r.udpRcvbufErrors)")
        }
    }

    struct KernelInterval: Encodable { var elapsedS: Double; var rxPps: Double; var rxPackets: UInt64 }
    struct KernelSocket: Encodable { var socket: Int; var core: Int; var rxPackets: UInt64; var rxBytes: UInt64 }
    struct KernelResult: Encodable {
        var interface: String
        var bindMode: String
        var durationS: Double
        var packets: UInt64
        var pps: Double
        var udpRcvbufErrors: UInt64
        var udpInErrors: UInt64
        /// One per socket (named lanes so `lanes scale` reads either dut alike).
        var lanes: [KernelSocket]
        var exitReason: ExitReason
        var cpuS: Double = processCPUSeconds()
    }
}
