import Synchronization
import ArgumentParser
import Foundation
import LanesCore
import LanesEngine
import LanesLab
import LanesPacket
import LanesReport
import LanesXDP

struct GenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gen",
        abstract: "Generate UDP traffic on every lane: many flows, sizes or IMIX, paced rate, signed packets.",
        discussion: """
        Every packet carries a signature (stream, sequence, TX timestamp); with --rx the
        generator also receives on its port and reports loss, reordering, duplicates and
        latency percentiles per stream (e.g. through 'lanes fwd --mode macswap' on the dut).
        Memory: UMEM of --frames x --frame-size per lane (default 8 MiB), plus a few MiB.
        Transmit paths (--tx): 'xsk' is AF_XDP; 'xdp' runs an XDP program over the
        kernel's live frames (BPF_PROG_RUN, Linux 5.18+), which builds no skb per packet
        and so is several times faster where AF_XDP runs in copy mode (veth, ENA).
        'auto' (default) takes xsk where AF_XDP binds zero-copy, else xdp where the
        device takes redirected frames and the frames fit a page, else xsk; the run
        header and the JSON (tx_path, tx_path_reason) say which and why.
        '--rx-only --rx xdp' counts the far end in XDP (per-CPU maps), not in a lane.
        \(EngineOptions<GenPort>.faultsHelp) (--tx xsk; with --tx xdp only the interface disappearing is watched.)
        Examples:
          lanes gen --flows 64 --rss --rate 1Mpps --duration 10
          lanes gen --count 100000 --size 64,128,256 --rate 50kpps
          lanes gen --imix --rx --duration 5 --json
        """)
    @OptionGroup var options: EngineOptions<GenPort>
    @Option(help: "Number of flows (streams; default 1).") var flows: Int?
    @Option(help: "Source address or range A-B (default: the testbed's 198.18.0.1, or fd00:198:18::1 with --ipv6).") var srcIp: String?
    @Option(help: "Destination address or range A-B (default 198.18.1.1, or fd00:198:18:1::1).") var dstIp: String?
    @Option(help: "Source port or range A-B.") var srcPort = "1024-65535"
    @Option(help: "Destination port or range A-B.") var dstPort = "9000"
    @Flag(help: "IPv6 instead of IPv4.") var ipv6 = false
    @Option(help: "Flows from a file: 'lanes flows --json' output, or lines 'SRC DST SPORT DPORT'.") var flowsFile: String?
    @Option(help: "Source MAC (default: the interface's).") var srcMac: String?
    @Option(help: "Destination MAC (default on the testbed: dut:d0's).") var dstMac: String?
    @Option(help: "VLAN id to tag frames with.") var vlan: UInt16?
    @Option(help: "Frame size in bytes without FCS, or a list used in turn: 64 or 64,128,1518 (default 64; with --ipv6 78, the smallest that holds IPv6, UDP and the signature).") var size: String?
    @Flag(help: "IMIX: 7:4:1 of 64/570/1518 bytes.") var imix = false
    @Option(help: "Custom IMIX, SIZE:WEIGHT pairs: 64:7,570:4,1518:1.") var imixMix: String?
    @Option(help: "Total rate: 50000, 50kpps, 2Mpps, 500Mbps, 1Gbps (default: as fast as possible).") var rate: String?
    @Option(help: "Stop after N packets in total.") var count: UInt64?
    @Flag(help: "Send each flow on the TX queue the receiver's RSS would pick (emulates NIC RSS on veth; standard key and the kernel's default table unless --rss-table).") var rss = false
    @Option(help: "The receiving device's RSS ('lanes info IFACE --json' there: key, table, hash fields): --rss plans flows by it, lane q sending what lands on the receiver's queue q.") var rssTable: String?
    @Option(help: "Transmit path: auto, xsk (AF_XDP), xdp (XDP live frames).") var tx: TxPath = .auto
    @Option(help: ArgumentHelp("Receive signed packets: loss, reorder, duplicates, latency. '--rx' (or '--rx xsk'): on this port's AF_XDP lanes; with --rx-only, 'xdp' counts in XDP itself.", valueName: "xsk|xdp")) var rx: RxPath?
    @Flag(help: "Only receive (the far end of a one-way measurement): every stream id below max(--flows, 4096) is counted by its signature; with --flows, streams past it are reported as unexpected and those that sent nothing as missing. Loss comes from sequence gaps.") var rxOnly = false

    /// The options as the planner takes them.
    var request: GenRequest {
        var q = GenRequest()
        (q.flows, q.srcIp, q.dstIp, q.srcPort, q.dstPort, q.ipv6, q.flowsFile) = (flows, srcIp, dstIp, srcPort, dstPort, ipv6, flowsFile)
        (q.srcMac, q.dstMac, q.vlan, q.size, q.imix, q.imixMix, q.rate, q.count) = (srcMac, dstMac, vlan, size, imix, imixMix, rate, count)
        (q.rss, q.rssTable, q.rx, q.rxOnly) = (rss, rssTable, rx, rxOnly)
        let tb = Testbed(name: options.testbed)
        q.defaultSrc = (tb.g0.ipv4, tb.g0.ipv6)
        q.defaultDst = (tb.s0.ipv4, tb.s0.ipv6)
        q.defaultDstMac = options.interface == nil ? tb.d0.mac : nil
        return q
    }

    func run() throws {
        var config = try options.prepare()
        let iface = config.interface
        let port = GenInterface(interface: iface, mtu: Sysfs.mtu(of: iface) ?? 1500,
                           mac: Sysfs.read("/sys/class/net/\(iface)/address").flatMap { MACAddress($0) },
                           rxQueues: try InterfaceInfo.queueCount(iface).rx, queues: config.queues, frameSize: config.umem.frameSize)
        let plan = try GenPlan(request, port: port)
        config.attachProgram = plan.receiving
        config.largestPacket = plan.rxOnly ? 0 : plan.sizes.max() ?? 0
        if options.duration == nil && count == nil && !rxOnly {
            printError("lanes gen: running until SIGINT (give --count or --duration to stop)\n")
        }
        let json = options.json
        let queues = plan.queues
        let cores = config.cores ?? queues.indices.map { $0 % Sysfs.onlineCPUs() }
        if plan.rxOnly && plan.rxPath == .xdp { return try GenXDP.receive(config: config, options: options, plan: plan) }
        let choice = try TxPathChoice.choose(requested: rxOnly ? .xsk : tx, interface: iface, queues: queues, cores: cores,
                                             sizes: plan.sizes, sameportReceive: rx != nil && !rxOnly, metrics: options.metrics != nil,
                                             busyPoll: options.busyPoll, rxOnly: rxOnly)
        if choice.path == .xdp {
            let lanes = plan.lanes.indices.map { LiveGenLane(queue: queues[$0], core: cores[$0], plan: plan.lanes[$0]) }
            return try GenXDP.transmit(config: config, options: options, lanes: lanes, choice: choice, plan: plan)
        }
        let made = AppList()
        let lanePlans = plan.lanes
        try options.run(config, mode: rxOnly ? "gen (receive only)" : "gen, tx xsk (\(choice.reason))", grace: plan.receiving ? 0.5 : 0.05, report: { summary, apps in
            let report = Report(gen: plan, summary: summary, apps: apps, choice: choice)
            if json { printJSONLine(report) } else { GenCommand.printReport(report) }
        }, extraMetrics: plan.receiving ? { PrometheusText.histogram("lanes_gen_latency_seconds", "One-way or round-trip latency of signed packets.", made.snapshot()) } : nil) { engine, i in
            let app = GenApp(plan: lanePlans[i])
            made.append(app.latency)
            return app
        }
    }

    /// The apps' latency histograms (handles sharing the lanes' buckets), for
    /// --metrics: filled while the apps are made, read by the metrics thread.
    final class AppList: Sendable {
        let histograms = Mutex<[LatencyHistogram]>([])
        func append(_ h: LatencyHistogram) { histograms.withLock { $0.append(h) } }
        func snapshot() -> [LatencyHistogram] { histograms.withLock { $0 } }
    }

    static func printReport(_ r: Report) {
        let txPath = r.txPath ?? ""
        if !txPath.isEmpty && r.rxPath != "xdp" { print("tx path: \(txPath) (\(r.txPathReason ?? ""))") }
        var line = "gen: \(r.txPackets ?? 0) packets, \(r.txBytes ?? 0) bytes sent over \(format2(r.sendingS ?? r.durationS)) s: \(fmtRate(r.txPps ?? 0, "pps")), \(fmtRate(r.txBps ?? 0, "bps"))"
        if let p = r.requestedPps { line += " (requested \(fmtRate(p, "pps")))" }
        print(line + "; \(r.flows ?? 0) flows, stopped by \(r.exitReason)")
        for l in r.lanes ?? [] { print("  q\(l.queue ?? 0)/core \(l.core ?? 0): \(l.txPackets ?? 0) packets, \(l.streams ?? 0) streams") }
        if let n = r.linkDownEvents, n > 0 { print("  the link went down \(n) time(s): the lanes waited, and the frames the kernel held went when it was back") }
        if let rx = r.rxPackets {
            if rx == 0 {
                print("rx: nothing came back (0 signed packets); the frames need a reflector, e.g. 'lanes fwd --mode macswap' on the dut")
            } else {
                print("rx: \(rx) signed packets in \(r.streams?.filter { $0.received + $0.duplicates > 0 }.count ?? 0) stream(s), lost \(r.lost ?? 0), reordered \(r.reordered ?? 0), duplicates \(r.duplicates ?? 0)")
            }
            if let n = r.unexpectedStreams, n > 0 {
                print("rx: \(n) unexpected stream(s), past the \(r.expectedStreams ?? 0) expected: " + (r.streams ?? []).filter(\.unexpected).prefix(8).map { "\($0.stream) (\($0.flow))" }.joined(separator: ", "))
            }
            if let missing = r.missingStreams, !missing.isEmpty {
                print("rx: nothing arrived of \(missing.count) expected stream(s): " + missing.prefix(16).map(String.init).joined(separator: ", ") + (missing.count > 16 ? ", ..." : ""))
            }
            if let u = r.untracked, u > 0 {
                print("rx: \(u) signed packets of stream ids past the \(r.trackedStreams ?? 0) tracked (counted in rx, in no stream): give --flows to track more")
            }
            if let lat = r.latency {
                print("latency ns: min \(lat.minNs) p50 \(lat.p50Ns) p90 \(lat.p90Ns) p99 \(lat.p99Ns) p99.9 \(lat.p999Ns) max \(lat.maxNs)")
            }
        }
        for line in r.ec2Shaping?.lines ?? [] { print(line) }
    }
}
