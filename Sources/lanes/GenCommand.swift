import Synchronization
import ArgumentParser
import Foundation
import LanesCore
import LanesEngine
import LanesLab
import LanesPacket
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

    struct Report: Encodable {
        struct LaneReport: Encodable { var queue: Int; var core: Int; var txPackets: UInt64; var txBytes: UInt64; var streams: Int; var rxSigned: UInt64 }
        /// `queue`: where its packets arrived (absent: none did); `unexpected`: seen, but
        /// past the flows this side sends or was told of with --flows.
        struct StreamReport: Encodable { var stream: Int; var flow: String; var queue: Int?; var sent: UInt64; var received: UInt64; var lost: Int64; var reordered: UInt64; var duplicates: UInt64; var unexpected: Bool }
        struct Latency: Encodable { var count: UInt64; var minNs: UInt64; var p50Ns: UInt64; var p90Ns: UInt64; var p99Ns: UInt64; var p999Ns: UInt64; var maxNs: UInt64 }
        var interface: String
        var bindMode: String
        /// "xsk" or "xdp", and why it was chosen.
        var txPath: String
        var txPathReason: String
        /// Receiving: "xsk" (AF_XDP lanes) or "xdp" (counted in XDP).
        var rxPath: String?
        var flows: Int
        var sizes: [Int]
        var durationS: Double
        /// Seconds from the first frame sent to the last (absent: under two sends
        /// apart). tx_pps and tx_bps are over this span, not over start-up and drain.
        var sendingS: Double?
        var exitReason: ExitReason
        /// The run's end by a device fault (`DeviceWatch`), in words.
        var fault: String? = nil
        /// Times the port's link went down (the lanes wait; what the kernel held goes when it is back).
        var linkDownEvents: Int = 0
        var txPackets: UInt64
        var txBytes: UInt64
        var txPps: Double
        var txBps: Double
        var requestedPps: Double?
        var requestedBps: Double?
        var dropTxRingFull: UInt64
        /// The kernel's XDP_STATISTICS rx_dropped over the generator's sockets (receiving).
        var kernelRxDropped: UInt64
        var lanes: [LaneReport]
        var rxPackets: UInt64?
        var lost: Int64?
        var reordered: UInt64?
        var duplicates: UInt64?
        var latency: Latency?
        var streams: [StreamReport]?
        /// Receiving: stream ids counted per stream (every id below this), the streams
        /// expected (absent: receive only without --flows), signed packets of ids past
        /// the tracked ones (in rx_packets, in no stream), seen streams past the
        /// expected ones, and expected streams of which nothing arrived.
        var trackedStreams: Int?
        var expectedStreams: Int?
        var untracked: UInt64?
        var unexpectedStreams: Int?
        var missingStreams: [Int]?
        var framesBalanced: Bool
        /// CPU seconds this process used (all threads, user + system).
        var cpuS: Double = processCPUSeconds()
        /// ENA's allowance counters' rises over the run (absent off ena).
        var ec2Shaping: EC2Shaping? = nil

        /// The sending span over lanes' (first, last) send times in CLOCK_MONOTONIC ns.
        static func sendingSpan(_ lanes: [(first: UInt64, last: UInt64)]) -> Double? {
            let sent = lanes.filter { $0.first > 0 }
            guard let lo = sent.map(\.first).min(), let hi = sent.map(\.last).max(), hi > lo else { return nil }
            return Double(hi - lo) / 1e9
        }

        /// One stream as a receiver saw it, by the id in its signature: counts merged
        /// over lanes or CPUs, and the flow and queue of its first packet (nil: none seen).
        struct SeenStream { var rx = StreamRx(); var flow: FlowKey?; var queue: Int? }

        /// Per-stream receive counts and latency: the same fields from either receiver.
        /// `seen` is indexed by stream id (every tracked id); a stream is reported when
        /// it brought packets or is expected (below `expected`: the flows this side
        /// sends, or was told of with --flows); a seen one past `expected` is marked
        /// unexpected. `sent[i]`: what this side sent of stream i (the same-port
        /// round trip); otherwise loss is the gaps below the highest sequence seen.
        mutating func addReceive(_ seen: [SeenStream], untracked: UInt64, expected: Int?, sent: [UInt64],
                                 latency hist: LatencyHistogram, plannedFlows: [FlowKey]) {
            var streams: [StreamReport] = []
            for (i, s) in seen.enumerated() {
                let r = s.rx
                guard r.received + r.duplicates > 0 || i < expected ?? 0 else { continue }
                let sentHere = i < sent.count ? sent[i] : r.highest
                let flow = s.flow?.description ?? (i < plannedFlows.count ? plannedFlows[i].description : "?")
                streams.append(.init(stream: i, flow: flow, queue: s.queue, sent: sentHere, received: r.received,
                                     lost: Int64(sentHere) - Int64(r.received), reordered: r.reordered, duplicates: r.duplicates,
                                     unexpected: expected.map { i >= $0 } ?? false))
            }
            self.streams = streams
            trackedStreams = seen.count
            expectedStreams = expected
            self.untracked = untracked
            unexpectedStreams = streams.filter(\.unexpected).count
            missingStreams = streams.filter { $0.received + $0.duplicates == 0 }.map(\.stream)
            rxPackets = streams.reduce(0) { $0 + $1.received + $1.duplicates } + untracked
            lost = streams.reduce(0) { $0 + $1.lost }
            reordered = streams.reduce(0) { $0 + $1.reordered }
            duplicates = streams.reduce(0) { $0 + $1.duplicates }
            // Nothing came back: no latency at all, rather than a line of zeros.
            latency = hist.count == 0 ? nil : Latency(count: hist.count, minNs: hist.count > 0 ? hist.min : UInt64(0), p50Ns: hist.percentile(0.5), p90Ns: hist.percentile(0.9),
                              p99Ns: hist.percentile(0.99), p999Ns: hist.percentile(0.999), maxNs: hist.max)
        }
    }

    func run() throws {
        var config = try options.prepare()
        let tb = Testbed(name: options.testbed)
        let onTestbed = options.interface == nil
        // Sizes, checked for the address family: headers and the 16-byte signature must fit.
        let family = ipv6 ? "IPv6" : "IPv4"
        let minSize = (ipv6 ? 62 : 42) + Signature.length + (vlan == nil ? 0 : 4)
        // The largest frame: what the interface's MTU lets out (Ethernet and a VLAN
        // tag on top), and what the kernel takes as one AF_XDP packet (multi-buffer:
        // at most max_skb_frags + 1 frames; over one frame, sockets bind with XDP_USE_SG).
        let mtu = Sysfs.mtu(of: config.interface) ?? 1500
        let mtuFrame = mtu + 14 + (vlan == nil ? 0 : 4)
        let bufferLimit = config.umem.frameSize * Engine.copyModeMaxSegments
        let maxSize = min(mtuFrame, bufferLimit)
        if size != nil && (imix || imixMix != nil) { throw LanesError("--size and --\(imix ? "imix" : "imix-mix") conflict", fix: "give one of them") }
        if imix && imixMix != nil { throw LanesError("--imix and --imix-mix conflict", fix: "give one of them") }
        func checked(_ list: [Int], _ option: String, _ text: String) throws -> [Int] {
            if let small = list.first(where: { $0 < minSize }) {
                throw LanesError("bad \(option) '\(text)': \(small) bytes is below the \(family)\(vlan == nil ? "" : "+VLAN") minimum of \(minSize) (headers and the 16-byte signature)",
                                 fix: "give sizes \(minSize)-\(maxSize)")
            }
            if let big = list.first(where: { $0 > mtuFrame }) {
                throw LanesError("bad \(option) '\(text)': \(big) bytes is over what \(config.interface)'s MTU of \(mtu) sends (\(mtuFrame) with the Ethernet header)",
                                 fix: "give sizes \(minSize)-\(maxSize), or raise the MTU: ip link set dev \(config.interface) mtu \(big - 14 - (vlan == nil ? 0 : 4)) (and the peer's)")
            }
            if let big = list.first(where: { $0 > bufferLimit }) {
                throw LanesError("bad \(option) '\(text)': \(big) bytes needs more than the \(Engine.copyModeMaxSegments) \(config.umem.frameSize)-byte frames the kernel takes per packet",
                                 fix: "give sizes \(minSize)-\(maxSize)\(config.umem.frameSize < 4096 ? ", or --frame-size 4096" : "")")
            }
            return list
        }
        var sizes: [Int]
        if let mix = imixMix {
            guard let m = FrameSizes.parseIMIX(mix, minimum: 1, maximum: .max) else {
                throw LanesError("bad --imix-mix '\(mix)'", fix: "use SIZE:WEIGHT pairs like 64:7,570:4,1518:1 with sizes \(minSize)-\(maxSize)")
            }
            sizes = try checked(FrameSizes.pattern(m), "--imix-mix", mix)
        } else if imix {
            // The classic mix; its 64-byte frames become the family's smallest where 64 cannot hold it.
            sizes = FrameSizes.pattern(FrameSizes.simpleIMIX).map { max($0, minSize) }
        } else {
            let text = size ?? "\(max(64, minSize))"
            guard let l = FrameSizes.parseList(text, minimum: 1, maximum: .max) else {
                throw LanesError("bad --size '\(text)'", fix: "give sizes \(minSize)-\(maxSize) bytes (frame without FCS), e.g. \(max(64, minSize)) or \(max(64, minSize)),128")
            }
            sizes = try checked(l, "--size", text)
        }
        // Addresses.
        let ifaceMAC = Sysfs.read("/sys/class/net/\(config.interface)/address").flatMap { MACAddress($0) }
        guard let srcMAC = srcMac.map({ MACAddress($0) }) ?? ifaceMAC else {
            throw LanesError("bad --src-mac '\(srcMac ?? "")'", fix: "use six hex bytes like 02:4c:00:00:00:01")
        }
        // Receive only sends nothing: no next hop is needed.
        let dstMACText = dstMac ?? (onTestbed ? tb.d0.mac : rxOnly ? srcMAC.description : nil)
        guard let dstMACText else { throw LanesError("--dst-mac is needed off the testbed", fix: "give the next hop's MAC, e.g. --dst-mac 02:4c:00:00:00:02") }
        guard let dstMAC = MACAddress(dstMACText) else { throw LanesError("bad --dst-mac '\(dstMACText)'", fix: "use six hex bytes like 02:4c:00:00:00:02") }
        if let vlan, !(1...4094).contains(vlan) { throw LanesError("bad --vlan \(vlan)", fix: "VLAN ids are 1-4094") }
        if flows != nil && flowsFile != nil { throw LanesError("--flows and --flows-file conflict", fix: "the file gives the flows; drop --flows") }
        let flows = self.flows ?? 1
        guard flows >= 1 && flows <= 65536 else { throw LanesError("bad --flows \(flows)", fix: "use 1-65536") }
        if let count, count == 0 { throw LanesError("bad --count 0", fix: "give a positive packet count") }
        let (rxQueues, _) = try InterfaceInfo.queueCount(config.interface)
        let queues = config.queues ?? Array(0..<rxQueues)
        // The receiver's RSS: its own key, table and hash fields where given, else the standard ones.
        if rssTable != nil && !rss { throw LanesError("--rss-table needs --rss", fix: "add --rss") }
        let receiverRSS = try rssTable.map(GenFlows.readRSS) ?? RSSTable(queues: rxQueues)
        var flowList: [FlowKey]
        if let flowsFile {
            flowList = try GenFlows.read(file: flowsFile)
            if flowList.contains(where: { $0.proto != 17 }) {
                throw LanesError("'\(flowsFile)' has TCP flows: gen sends UDP", fix: "give UDP flows (or none of the 'tcp' words)")
            }
        } else {
            let src = srcIp ?? (ipv6 ? tb.g0.ipv6 : tb.s0.ipv4.replacingOccurrences(of: "198.18.1.1", with: tb.g0.ipv4))
            let dst = dstIp ?? (ipv6 ? tb.s0.ipv6 : tb.s0.ipv4)
            flowList = try GenFlows.ranges(count: flows, src: src, dst: dst, srcPorts: srcPort, dstPorts: dstPort,
                                           rss: rss ? receiverRSS : nil, queues: rxQueues)
        }
        // Which lane sends which flow.
        var laneStreams = Array(repeating: [Int](), count: queues.count)
        var flowQueue = Array(repeating: 0, count: flowList.count)
        if rss {
            let table = receiverRSS
            for (i, f) in flowList.enumerated() {
                let q = table.queue(for: f)
                guard let lane = queues.firstIndex(of: q) else {
                    throw LanesError("flow \(f) maps to queue \(q), which no lane serves", fix: "serve every queue (omit --queues) or drop --rss")
                }
                laneStreams[lane].append(i)
                flowQueue[i] = q
            }
        } else {
            for i in flowList.indices { laneStreams[i % queues.count].append(i); flowQueue[i] = queues[i % queues.count] }
        }
        let active = laneStreams.filter { !$0.isEmpty }.count
        let meanSize = Double(sizes.reduce(0, +)) / Double(sizes.count)
        var totalPps: Double? = nil
        var requestedBps: Double? = nil
        if let rate {
            guard let r = Rate.parse(rate) else { throw LanesError("bad --rate '\(rate)'", fix: "use e.g. 50000, 50kpps, 2Mpps, 500Mbps, 1Gbps") }
            totalPps = r.packetsPerSecond(meanFrameBytes: meanSize)
            requestedBps = totalPps! * meanSize * 8
        }
        let receiving = rx != nil || rxOnly
        let rxPath = rx ?? .xsk
        if rxPath == .xdp && !rxOnly {
            throw LanesError("--rx xdp counts the far end in XDP: it needs --rx-only", fix: "use --rx-only --rx xdp on the receiving port, or --rx xsk")
        }
        config.attachProgram = receiving
        config.largestPacket = rxOnly ? 0 : sizes.max() ?? 0
        if rxOnly && (count != nil || rate != nil) { throw LanesError("--rx-only sends nothing: --count and --rate do not apply", fix: "stop it with --duration or SIGINT") }
        var laneCounts: [UInt64?] = laneStreams.map { _ in nil }
        if let count {
            var remaining = count
            var given = 0
            for (i, s) in laneStreams.enumerated() where !s.isEmpty {
                let share = count / UInt64(active) + (UInt64(given) < count % UInt64(active) ? 1 : 0)
                laneCounts[i] = share
                remaining -= share
                given += 1
            }
        }
        let plans = laneStreams.enumerated().map { i, streams in
            var p = GenLanePlan(streams: streams, flows: flowList, srcMAC: srcMAC, dstMAC: dstMAC, vlan: vlan, sizes: sizes,
                                pps: streams.isEmpty ? nil : totalPps.map { $0 / Double(active) },
                                count: streams.isEmpty ? 0 : laneCounts[i], receive: receiving)
            p.receiveOnly = rxOnly
            return p
        }
        if options.duration == nil && count == nil && !rxOnly {
            printError("lanes gen: running until SIGINT (give --count or --duration to stop)\n")
        }
        let json = options.json
        let cores = config.cores ?? queues.indices.map { $0 % Sysfs.onlineCPUs() }
        // The streams a receiver expects: what this side sends, or what --flows or
        // --flows-file name; receive only with neither expects none in particular.
        let expected: Int? = rxOnly && self.flows == nil && flowsFile == nil ? nil : flowList.count
        if rxOnly && rxPath == .xdp {
            try GenXDP.receive(config: config, options: options, flows: flowList, expected: expected, sizes: sizes)
            return
        }
        let choice = try GenXDP.choose(requested: rxOnly ? .xsk : tx, interface: config.interface, queues: queues, cores: cores,
                                       sizes: sizes, sameportReceive: rx != nil && !rxOnly, metrics: options.metrics != nil,
                                       rxOnly: rxOnly)
        if choice.path == .xdp {
            let lanes = plans.indices.map { LiveGenLane(queue: queues[$0], core: cores[$0], plan: plans[$0]) }
            try GenXDP.transmit(config: config, options: options, lanes: lanes, choice: choice, flows: flowList,
                                sizes: sizes, requestedPps: totalPps, requestedBps: requestedBps)
            return
        }
        let made = AppList()
        try options.run(config, mode: rxOnly ? "gen (receive only)" : "gen, tx xsk (\(choice.reason))", grace: receiving ? 0.5 : 0.05, report: { summary, apps in
            var report = GenCommand.makeReport(summary: summary, apps: apps, flows: flowList,
                                               sizes: sizes, requestedPps: totalPps, requestedBps: requestedBps, receive: receiving,
                                               receiveOnly: rxOnly, expected: expected)
            report.txPath = choice.path.rawValue
            report.txPathReason = choice.reason
            report.rxPath = receiving ? "xsk" : nil
            if json { printJSONLine(report) } else { GenCommand.printReport(report) }
        }, extraMetrics: receiving ? { PrometheusText.histogram("lanes_gen_latency_seconds", "One-way or round-trip latency of signed packets.", made.snapshot()) } : nil) { engine, i in
            let app = GenApp(plan: plans[i])
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

    static func makeReport(summary s: RunSummary, apps: [GenApp], flows: [FlowKey], sizes: [Int],
                           requestedPps: Double?, requestedBps: Double?, receive: Bool, receiveOnly: Bool = false, expected: Int? = nil) -> Report {
        let span = Report.sendingSpan(apps.map { ($0.firstSentNs, $0.lastSentNs) })
        let d = max(span ?? s.durationS, 1e-9)
        var sent = Array(repeating: UInt64(0), count: flows.count)
        for a in apps { for i in 0..<flows.count { sent[i] += a.sequences[i] } }
        var rep = Report(interface: s.interface, bindMode: s.bindMode, txPath: "xsk", txPathReason: "", rxPath: nil, flows: flows.count, sizes: Array(Set(sizes)).sorted(),
                         durationS: s.durationS, sendingS: span, exitReason: s.exitReason, txPackets: s.txPackets, txBytes: s.txBytes,
                         txPps: Double(s.txPackets) / d, txBps: Double(s.txBytes) * 8 / d,
                         requestedPps: requestedPps, requestedBps: requestedBps,
                         dropTxRingFull: s.lanes.reduce(0) { $0 + ($1.drops["drop_tx_ring_full"] ?? 0) },
                         kernelRxDropped: s.lanes.reduce(0) { $0 + $1.xsk.rxDropped },
                         lanes: zip(s.lanes, apps).map { l, a in .init(queue: l.queue, core: l.core, txPackets: l.txPackets, txBytes: l.txBytes, streams: a.plan.streams.count, rxSigned: a.signedReceived) },
                         framesBalanced: s.framesBalanced)
        rep.ec2Shaping = s.ec2Shaping
        rep.fault = s.fault
        rep.linkDownEvents = s.linkDownEvents
        if receive {
            var hist = LatencyHistogram()
            for a in apps { hist.add(a.latency) }
            // Every tracked id, merged over the lanes; the flow and queue from the lane that saw most of it.
            let tracked = apps.map(\.trackedStreams).max() ?? 0
            let seen: [Report.SeenStream] = (0..<tracked).map { i in
                var st = Report.SeenStream()
                var most: UInt64 = 0
                for (l, a) in zip(s.lanes, apps) where i < a.trackedStreams && a.rx[i].received + a.rx[i].duplicates > 0 {
                    let r = a.rx[i]
                    st.rx.received += r.received; st.rx.duplicates += r.duplicates; st.rx.reordered += r.reordered
                    st.rx.highest = max(st.rx.highest, r.highest)
                    if r.received + r.duplicates > most { most = r.received + r.duplicates; st.flow = a.rxFlows[i]; st.queue = l.queue }
                }
                return st
            }
            rep.addReceive(seen, untracked: apps.reduce(0) { $0 + $1.untrackedReceived }, expected: expected,
                           sent: receiveOnly ? [] : sent, latency: hist, plannedFlows: flows)
        }
        return rep
    }

    static func printReport(_ r: Report) {
        if !r.txPath.isEmpty && r.rxPath != "xdp" { print("tx path: \(r.txPath) (\(r.txPathReason))") }
        var line = "gen: \(r.txPackets) packets, \(r.txBytes) bytes sent over \(format2(r.sendingS ?? r.durationS)) s: \(fmtRate(r.txPps, "pps")), \(fmtRate(r.txBps, "bps"))"
        if let p = r.requestedPps { line += " (requested \(fmtRate(p, "pps")))" }
        print(line + "; \(r.flows) flows, stopped by \(r.exitReason)")
        for l in r.lanes { print("  q\(l.queue)/core \(l.core): \(l.txPackets) packets, \(l.streams) streams") }
        if r.linkDownEvents > 0 { print("  the link went down \(r.linkDownEvents) time(s): the lanes waited, and the frames the kernel held went when it was back") }
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

/// Building the generator's flow list.
enum GenFlows {
    static func ranges(count: Int, src: String, dst: String, srcPorts: String, dstPorts: String, rss: RSSTable?, queues: Int) throws -> [FlowKey] {
        let (s0, s1) = RangeText.split(src), (d0, d1) = RangeText.split(dst)
        guard let sLo = IPAddress(s0), let sHi = IPAddress(s1), let dLo = IPAddress(d0), let dHi = IPAddress(d1),
              sLo.isV6 == dLo.isV6, sLo.isV6 == sHi.isV6, dLo.isV6 == dHi.isV6 else {
            throw LanesError("bad --src-ip/--dst-ip '\(src)' '\(dst)'", fix: "give addresses or ranges A-B of one family, e.g. 198.18.0.1-198.18.0.50")
        }
        guard let sp = PortRange.parse(srcPorts) else { throw LanesError("bad --src-port '\(srcPorts)'", fix: "use a port 1-65535 or a range A-B") }
        guard let dp = PortRange.parse(dstPorts) else { throw LanesError("bad --dst-port '\(dstPorts)'", fix: "use a port 1-65535 or a range A-B") }
        func span(_ a: IPAddress, _ b: IPAddress) -> UInt64 {
            switch (a, b) {
            case (.v4(let x), .v4(let y)): y.value >= x.value ? UInt64(y.value - x.value) + 1 : 0
            case (.v6(let x), .v6(let y)): x.high == y.high && y.low >= x.low ? min(y.low - x.low, 1 << 32) + 1 : 0
            default: 0
            }
        }
        func nth(_ a: IPAddress, _ i: UInt64) -> IPAddress {
            switch a {
            case .v4(let x): .v4(IPv4Address(x.value &+ UInt32(truncatingIfNeeded: i)))
            case .v6(let x): .v6(IPv6Address(high: x.high, low: x.low &+ i))
            }
        }
        let nS = span(sLo, sHi), nD = span(dLo, dHi)
        guard nS > 0, nD > 0 else { throw LanesError("empty address range in --src-ip/--dst-ip", fix: "give A-B with A <= B") }
        for a in [sLo, sHi, dLo, dHi] {
            if case .v4(let x) = a, x.value & 0xfffe_0000 != 0xc612_0000 {
                throw LanesError("address \(x) is outside 198.18.0.0/15", fix: "Lanes generates only inside the benchmarking range")
            }
        }
        let nSP = UInt64(sp.count), nDP = UInt64(dp.count)
        func times(_ a: UInt64, _ b: UInt64) -> UInt64 { let (r, o) = a.multipliedReportingOverflow(by: b); return o ? .max : r }
        let distinct = times(times(nSP, nDP), times(nS, nD))
        if rss == nil && UInt64(count) > distinct {
            throw LanesError("--flows \(count) but the address and port ranges give only \(distinct) distinct flows",
                             fix: "widen --src-port/--dst-port or the address ranges, or ask for at most \(distinct) flows")
        }
        if let rss {
            // Even spread over queues, as the NIC's RSS will place them: the planner's list.
            let template = FlowKey(src: sLo, dst: dLo, srcPort: sp.lowerBound, dstPort: dp.lowerBound)
            let perQueue = (count + queues - 1) / queues
            guard let plan = FlowPlanner.plan(table: rss, queues: queues, perQueue: perQueue, template: template) else {
                throw LanesError("could not plan \(count) flows over \(queues) queues")
            }
            return plan.prefix(count).map(\.flow)
        }
        return (0..<UInt64(count)).map { i in
            var k = i
            let a = k % nSP; k /= nSP
            let b = k % nDP; k /= nDP
            let c = k % nS; k /= nS
            let d = k % nD
            return FlowKey(src: nth(sLo, c), dst: nth(dLo, d), srcPort: sp.lowerBound + UInt16(a), dstPort: dp.lowerBound + UInt16(b))
        }
    }

    /// The RSS of a receiving device from its 'lanes info --json' (key, indirection
    /// table, and which flow types hash their ports).
    static func readRSS(file: String) throws -> RSSTable {
        struct Info: Decodable {
            struct RSS: Decodable { var key: [UInt8]; var indirection: [UInt32] }
            var interface: String
            var rss: RSS?
            var rssPortHashing: RSSPortHashing?
        }
        guard let data = FileManager.default.contents(atPath: file) else { throw LanesError("cannot read --rss-table '\(file)'", fix: "write it with 'lanes info IFACE --json > FILE' on the receiver") }
        let dec = JSONDecoder()
        dec.keyDecodingStrategy = .convertFromSnakeCase
        guard let info = try? dec.decode(Info.self, from: data) else {
            throw LanesError("bad --rss-table '\(file)': not 'lanes info --json' output", fix: "write it with 'lanes info IFACE --json > FILE' on the receiver")
        }
        guard let r = info.rss, !r.indirection.isEmpty else {
            throw LanesError("--rss-table '\(file)': \(info.interface) reports no RSS table", fix: "drop --rss-table: the standard key and the kernel's default table apply")
        }
        return RSSTable(key: r.key.isEmpty ? Toeplitz.standardKey : r.key, indirection: r.indirection, portHashing: info.rssPortHashing ?? RSSPortHashing())
    }

    static func read(file: String) throws -> [FlowKey] {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw LanesError("cannot read flows file '\(file)'", fix: "check the path")
        }
        let text = String(decoding: data, as: UTF8.self)
        var out: [FlowKey] = []
        if text.trimmingCharacters(in: .whitespaces).hasPrefix("{") {
            struct Plan: Decodable { struct F: Decodable { var src: String; var dst: String; var srcPort: Int; var dstPort: Int; var proto: String? }; var flows: [F] }
            let dec = JSONDecoder()
            dec.keyDecodingStrategy = .convertFromSnakeCase
            guard let plan = try? dec.decode(Plan.self, from: data) else {
                throw LanesError("bad flows file '\(file)': not 'lanes flows --json' output", fix: "regenerate it with 'lanes flows --json'")
            }
            for f in plan.flows {
                guard let s = IPAddress(f.src), let d = IPAddress(f.dst), let sp = UInt16(exactly: f.srcPort), let dp = UInt16(exactly: f.dstPort) else {
                    throw LanesError("bad flow in '\(file)': \(f.src) \(f.dst) \(f.srcPort) \(f.dstPort)")
                }
                out.append(FlowKey(src: s, dst: d, srcPort: sp, dstPort: dp, proto: f.proto == "tcp" ? 6 : 17))
            }
        } else {
            for (n, line) in text.split(separator: "\n").enumerated() {
                let w = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," })
                if w.isEmpty || w[0].hasPrefix("#") { continue }
                guard w.count == 4 || (w.count == 5 && (w[4] == "udp" || w[4] == "tcp")), let s = IPAddress(w[0]), let d = IPAddress(w[1]),
                      let sp = UInt16(w[2]), let dp = UInt16(w[3]), s.isV6 == d.isV6 else {
                    throw LanesError("bad flows file '\(file)' line \(n + 1): '\(line)'", fix: "write 'SRC DST SPORT DPORT [udp|tcp]' per line")
                }
                out.append(FlowKey(src: s, dst: d, srcPort: sp, dstPort: dp, proto: w.count == 5 && w[4] == "tcp" ? 6 : 17))
            }
        }
        guard !out.isEmpty, out.count <= 65536 else { throw LanesError("flows file '\(file)' has \(out.count) flows", fix: "give 1-65536 flows") }
        for f in out {
            if case .v4(let x) = f.dst, x.value & 0xfffe_0000 != 0xc612_0000 {
                throw LanesError("flow destination \(x) is outside 198.18.0.0/15", fix: "Lanes generates only inside the benchmarking range")
            }
        }
        return out
    }
}
