import ArgumentParser
import Foundation
import LanesCore
import LanesEngine
import LanesLab
import LanesReport
import LanesXDP

extension BindMode: ExpressibleByArgument {}
extension XDPMode: ExpressibleByArgument {}
extension ForwardPath: ExpressibleByArgument {}

/// The testbed port a command works on when given no interface.
protocol DefaultPort {
    static var port: KeyPath<Testbed, Testbed.Port> { get }
    /// As help and errors name it: "dut:d0".
    static var label: String { get }
}
/// drop and fwd: the device under test's d0.
enum DutPort: DefaultPort {
    static var port: KeyPath<Testbed, Testbed.Port> { \.d0 }
    static var label: String { "dut:d0" }
}
/// capture: the sink's s0.
enum SinkPort: DefaultPort {
    static var port: KeyPath<Testbed, Testbed.Port> { \.s0 }
    static var label: String { "sink:s0" }
}
/// gen: the generator's g0.
enum GenPort: DefaultPort {
    static var port: KeyPath<Testbed, Testbed.Port> { \.g0 }
    static var label: String { "gen:g0" }
}

/// `--multi-buffer auto|on|off`.
enum MultiBufferMode: String, ExpressibleByArgument, CaseIterable {
    case auto, on, off
    var setting: Bool? { self == .auto ? nil : self == .on }
}

/// Options of every command that runs lanes on an interface; `Default` is the
/// testbed port it works on when given none (and what its help says).
struct EngineOptions<Default: DefaultPort>: ParsableArguments {
    @Argument(help: ArgumentHelp("Interface (default: the testbed's \(Default.label)).")) var interface: String?
    @Option(help: ArgumentHelp("Network namespace of the interface (default with no interface: the testbed's \(Default.label.split(separator: ":")[0]) namespace, NAME-\(Default.label.split(separator: ":")[0])).")) var netns: String?
    @Option(help: "Testbed name used when no interface is given.") var testbed = Testbed.defaultName
    @Option(help: "Queues to serve, e.g. 0-3 or 0,2 (default: all).") var queues: String?
    @Option(help: "One core per queue, e.g. 0-3 (default: lane i on core i mod online CPUs).") var cores: String?
    @Option(help: "UMEM frame size: 2048 or 4096.") var frameSize = 2048
    @Option(help: "UMEM frames per lane (power of two; 4096 x 2048 B = 8 MiB per lane).") var frames = 4096
    @Option(help: "Headroom bytes before each packet in its frame.") var headroom = 0
    @Option(help: "RX, TX, fill and completion ring size (power of two, >= 64).") var ringSize = 2048
    @Option(help: "Burst size (1-256).") var burst = 64
    @Option(help: "Socket bind mode: auto, copy, zero-copy.") var bind: BindMode = .auto
    @Option(help: "XDP attach mode: native, generic, auto.") var xdp: XDPMode = .auto
    @Flag(help: "Set SO_PREFER_BUSY_POLL, SO_BUSY_POLL and SO_BUSY_POLL_BUDGET.") var busyPoll = false
    @Flag(help: "Low latency: lanes never sleep (one core at 100% per lane) and kick TX after every burst; with --busy-poll, idle turns busy-poll the socket.") var latency = false
    @Option(help: "AF_XDP multi-buffer (XDP_USE_SG, jumbo frames across UMEM frames): auto (when the MTU or the packet size needs it), on, off.") var multiBuffer: MultiBufferMode = .auto
    @Option(help: "Which packets the lanes take: ip, ipv4, ipv6, udp, tcp [dport A[-B]]. Default udp: ARP, ping, ND and TCP (SSH) stay with the kernel.") var filter = "udp"
    @Flag(help: "Replace an XDP program that is not Lanes'.") var force = false
    @Option(help: "Police each 5-tuple flow to this rate in XDP before the lanes (e.g. 50Mbps): emulates EC2's per-flow cap.") var flowCap: String?
    @Option(help: "Run for S seconds (default: until SIGINT/SIGTERM).") var duration: Double?
    @Option(help: "Seconds between live reports (0: none).") var interval: Double = 1
    @Flag(help: "JSON lines every interval, then one JSON summary object.") var json = false
    @Option(help: "Serve Prometheus metrics at PORT (on 127.0.0.1), :PORT (every address), HOST:PORT or [IPV6]:PORT, in the interface's namespace; the URL is printed.") var metrics: String?

    /// Enters the right namespace and returns the engine configuration. With no
    /// interface given, the testbed port `Default`.
    func prepare() throws -> EngineConfig {
        try requireRoot(for: "AF_XDP and XDP")
        let iface: String
        if let interface {
            iface = interface
            if let netns { try NetworkNamespace.enterWithSysfs(netns) }
            // Name a missing interface before anything reads the device (a word right
            // after a flag never gets here: StrayWord names the flag).
            guard if_nametoindex(iface) != 0 else {
                let place = netns.map { "namespace \($0)" } ?? "this namespace"
                throw LanesError("interface '\(iface)' not found in \(place)",
                                 fix: "see 'ip\(netns.map { " -n \($0)" } ?? "") link', or run 'lanes testbed up' and give no interface")
            }
        } else {
            let port = Testbed(name: testbed)[keyPath: Default.port]
            let ns = netns ?? port.namespace
            guard NetworkNamespace.exists(ns) else {
                throw LanesError("no interface given and the testbed '\(testbed)' is not up", fix: "run 'lanes testbed up' or name an interface")
            }
            try NetworkNamespace.enterWithSysfs(ns)
            iface = port.interface
        }
        var c = EngineConfig(interface: iface)
        if let queues {
            guard let q = IndexList.parse(queues) else { throw LanesError("bad --queues '\(queues)'", fix: "use e.g. 0-3 or 0,2") }
            c.queues = q
        }
        if let cores {
            guard let k = IndexList.parse(cores) else { throw LanesError("bad --cores '\(cores)'", fix: "use e.g. 0-3 or 0,2") }
            c.cores = k
        }
        guard frameSize > 0, frameSize & (frameSize - 1) == 0 else {
            throw LanesError("frame size \(frameSize) is not a power of two", fix: "use --frame-size 2048 or 4096")
        }
        c.umem.frameSize = frameSize
        c.umem.frameCount = frames
        c.umem.headroom = headroom
        guard ringSize >= 64, ringSize & (ringSize - 1) == 0 else {
            throw LanesError("ring size \(ringSize) too small or not a power of two", fix: "use --ring-size 64 or more, a power of two (default 2048)")
        }
        c.umem.fillSize = min(ringSize, frames)
        c.umem.completionSize = min(ringSize, frames)
        c.socket.rxSize = ringSize
        c.socket.txSize = ringSize
        c.socket.bind = bind
        c.socket.busyPoll = busyPoll
        c.latency = latency
        c.multiBuffer = multiBuffer.setting
        try EngineConfig.checkBatch(burst)
        c.batch = burst
        c.xdpMode = xdp
        c.force = force
        do { c.filter = try LaneFilter(parsing: filter) } catch { throw LanesError("bad --filter: \(error)") }
        if let flowCap {
            guard case .bps(let b)? = Rate.parse(flowCap), b >= 1000 else {
                throw LanesError("bad --flow-cap '\(flowCap)'", fix: "give bits per second, e.g. 50Mbps or 1Gbps")
            }
            c.flowCapBps = UInt64(b)
        }
        _ = try runOptions() // --duration, --interval and --metrics fail before anything is set up
        return c
    }

    /// What a run does when the device changes under it (the commands' help).
    static var faultsHelp: String {
        """
        Faults: the XDP program detached or replaced by someone else, a served queue removed or queues added \
        that no lane serves (ethtool -L), the MTU raised past what the sockets take, a PCI reset of the device \
        or the interface disappearing end the run within 1 s: the report of what was counted, then one line \
        naming the fault and exit 1. A link going down and up is waited out: a line at each, counting \
        resumes (link_down_events).
        """
    }

    /// What every run takes alike (`--duration`, `--interval`, `--metrics`, `--json`), checked.
    func runOptions() throws -> RunOptions {
        try RunOptions(duration: duration, interval: interval, metrics: metrics.map(MetricsEndpoint.init(parsing:)), json: json)
    }

    /// Runs the engine with an app under the one lifecycle and prints live reports
    /// and the report. `report` replaces the default output (gen, capture, replay
    /// print their own); `helpers` start after set-up and stop before the report.
    @discardableResult
    func run<App: LaneApp>(_ config: EngineConfig, mode: String, grace: Double = 0.2,
                           report: ((RunSummary, [App]) -> Void)? = nil,
                           helpers: [RunHelper] = [],
                           makeReverseApp: ((Int) -> App)? = nil,
                           extraMetrics: (() -> String)? = nil,
                           makeApp: @escaping (Engine, Int) -> App) throws -> (RunSummary, [App]) {
        try Lifecycle.run(runOptions(), what: "lanes \(mode)", setUp: { try Engine(config) },
                          metrics: { PrometheusText.render(engine: $0, extra: extraMetrics?() ?? "") },
                          helpers: { _ in helpers },
                          run: { engine in
            if !json {
                print("lanes \(mode) on \(config.interface): \(engine.lanes.count) lane(s), bind \(engine.bindSummary)\(engine.multiBuffer ? " multi-buffer" : ""), xdp \(engine.program.attachedMode?.rawValue ?? "not attached"), filter '\(config.filter)', UMEM \(config.umem.bytes / 1024) KiB/lane on \(engine.lanes.first?.umem.placement ?? "")")
                // The driver's rules that shape this run (virtio_net's locked XDP TX, igb's, ena's), as 'lanes info' gives them.
                if let info = try? InterfaceInfo.gather(config.interface), info.driver != "veth" {
                    for n in info.notes where n.hasPrefix(info.driver + ":") { print("  note: \(n)") }
                }
            }
            return try engine.run(duration: duration, interval: interval, grace: grace, onInterval: printInterval,
                                  makeReverseApp: makeReverseApp, makeApp: { makeApp(engine, $0) })
        }, report: { summary, apps in
            if let report {
                report(summary, apps)
            } else if json {
                printJSONLine(summary.report)
            } else {
                printSummary(summary)
            }
            try endOnFault(summary.fault, at: summary.durationS)
            try endUnbalanced(summary)
        })
    }

    /// One live report: a JSON line, or the table (the screen cleared on a terminal).
    func printInterval(_ r: IntervalReport) {
        if json {
            printJSONLine(IntervalLine(r))
        } else {
            if isatty(1) == 1 { print("\u{1B}[2J\u{1B}[H", terminator: "") }
            print(r.table)
        }
    }

    func printSummary(_ s: RunSummary) {
        let d = max(s.durationS, 1e-9)
        print("summary: \(s.rxPackets) rx packets (\(fmtRate(Double(s.rxPackets) / d, "pps"))), \(s.txPackets) tx packets (\(fmtRate(Double(s.txPackets) / d, "pps"))) in \(format2(s.durationS)) s, stopped by \(s.exitReason)")
        for l in s.lanes where s.path == "xdp" {
            let drops = l.drops.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            print("  q\(l.queue)\(l.direction.map { " " + $0 } ?? ""): rx \(l.rxPackets) forwarded \(l.txPackets) passed to the kernel \(l.xdp.passed)" + (drops.isEmpty ? "" : ", \(drops)"))
        }
        if let d = s.egressTxDropped { print("  forwarded in XDP; egress tx_dropped \(d)" + (d > 0 ? " (frames the egress could not take: a veth's peer needs an XDP program or GRO on)" : "")) }
        for l in s.lanes where s.path != "xdp" {
            let drops = l.drops.filter { $0.value > 0 }.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            print("  q\(l.queue)/core \(l.core)\(l.direction.map { " " + $0 } ?? ""): rx \(l.rxPackets) tx \(l.txPackets)" + (drops.isEmpty ? "" : ", \(drops)")
                  + "; xdp redirected \(l.xdp.redirected) passed \(l.xdp.passed); kernel rx_dropped \(l.xsk.rxDropped) rx_ring_full \(l.xsk.rxRingFull) fill_empty \(l.xsk.rxFillRingEmptyDescs)")
            print("    \(l.frames)")
        }
        let x = s.lanes.reduce(XDPQueueCounters()) { $0 + $1.xdp }
        let passed = [("ttl expired", x.ttlExpired), ("unreachable or prohibit", x.unreachable), ("over the MTU", x.tooBig),
                      ("neighbour unresolved", x.unresolved), ("not forwarded by a route", x.notForwarded), ("by another port", x.otherPort)]
            .filter { $0.1 > 0 }.map { "\($0.0) \($0.1)" }
        let dropped = [("blackhole", x.blackhole), ("over the MTU, DF clear", x.tooBigDropped)].filter { $0.1 > 0 }.map { "\($0.0) \($0.1)" }
        if !passed.isEmpty || !dropped.isEmpty {
            print("  kernel FIB: passed to the kernel: " + (passed.isEmpty ? "none" : passed.joined(separator: ", ")) + "; dropped in XDP: " + (dropped.isEmpty ? "none" : dropped.joined(separator: ", ")))
        }
        print("  memory: \(s.processRSSBytes / 1024) KiB resident, \(s.processBeyondUMEMBytes / 1024) KiB beyond UMEM")
        if let shaping = s.ec2Shaping { for line in shaping.lines { print("  " + line) } }
    }
}

func format2(_ v: Double) -> String { "\((v * 100).rounded() / 100)" }

func printJSONLine<T: Encodable>(_ value: T) {
    if let d = try? Report.encoder.encode(value) { print(String(decoding: d, as: UTF8.self)) }
    fflush(nil) // every output stream: stdout without naming the mutable global
}

extension IntervalLine {
    /// The lanes' live report as its `--json` line.
    init(_ r: IntervalReport) {
        self.init(elapsedS: r.elapsed)
        (rxPps, txPps, rxBps, txBps) = (r.total.rxPps, r.total.txPps, r.total.rxBps, r.total.txBps)
        laneRxPps = r.rows.map(\.rxPps)
        (rxPackets, txPackets, drops) = (r.totals.rx, r.totals.tx, r.total.drops)
        framesUnaccounted = r.framesUnaccounted
        rssBytes = r.residentBytes
    }
}
