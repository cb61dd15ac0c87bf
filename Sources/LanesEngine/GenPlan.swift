import Foundation
import LanesCore
import LanesPacket
import LanesReport
import LanesXDP

// The generator's planning, out of the CLI: what `lanes gen` sends (sizes checked
// for the family and the port, flows by ranges, a file or the receiver's RSS,
// which lane sends which stream, the rate and count shares), the transmit path
// and why, and its report. The 198.18.0.0/15 policy is here: no flow leaves for
// an IPv4 address outside it.

/// `lanes gen --tx auto|xsk|xdp`.
public enum TxPath: String, CaseIterable, Sendable { case auto, xsk, xdp }
/// `lanes gen --rx xsk|xdp`.
public enum RxPath: String, CaseIterable, Sendable { case xsk, xdp }

/// The transmit path a run takes, and why.
public struct TxPathChoice: Sendable {
    public var path: TxPath
    public var reason: String
    public init(path: TxPath, reason: String) { self.path = path; self.reason = reason }


    /// Which transmit path runs, and why. `--tx xdp` with an obstacle is an error
    /// naming it; `auto` takes xsk where AF_XDP binds zero-copy, else xdp unless
    /// something stands in its way (then xsk, saying what).
    public static func choose(requested: TxPath, interface: String, queues: [Int], cores: [Int], sizes: [Int],
                       sameportReceive: Bool, metrics: Bool, busyPoll: Bool = false, rxOnly: Bool) throws(LanesError) -> TxPathChoice {
        if rxOnly { return TxPathChoice(path: .xsk, reason: "receive only") }
        if requested == .xsk { return TxPathChoice(path: .xsk, reason: "asked for with --tx xsk") }
        let driver = (try? Ethtool(interface).driverInfo().driver) ?? "?"
        let features = XDPFeatures.query(ifindex: if_nametoindex(interface))
        var obstacles: [String] = []
        if sameportReceive { obstacles.append("--rx receives on the sending port's AF_XDP lanes") }
        if metrics { obstacles.append("--metrics serves the AF_XDP engine's counters") }
        if busyPoll { obstacles.append("--busy-poll polls AF_XDP sockets, and live frames have none") }
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
            return TxPathChoice(path: .xdp, reason: "asked for with --tx xdp")
        }
        if let f = features, f.contains(.zeroCopy) { return TxPathChoice(path: .xsk, reason: "AF_XDP binds zero-copy on \(driver)") }
        if let first = obstacles.first { return TxPathChoice(path: .xsk, reason: first) }
        return TxPathChoice(path: .xdp, reason: "AF_XDP runs in copy mode on \(driver); live frames build no skb per packet")
    }
}

/// What `lanes gen` was asked for, as its options give it (text parsed here).
public struct GenRequest: Sendable {
    public var flows: Int?
    public var srcIp: String?, dstIp: String?
    public var srcPort = "1024-65535", dstPort = "9000"
    public var ipv6 = false
    public var flowsFile: String?
    public var srcMac: String?, dstMac: String?
    public var vlan: UInt16?
    public var size: String?
    public var imix = false
    public var imixMix: String?
    public var rate: String?
    public var count: UInt64?
    public var rss = false
    public var rssTable: String?
    public var rx: RxPath?
    public var rxOnly = false
    /// Where no address or next hop is given: the source and destination of each
    /// family (the testbed's), and the next hop's MAC (nil: none known, off the testbed).
    public var defaultSrc = (v4: "198.18.0.1", v6: "fd00:198:18::1"), defaultDst = (v4: "198.18.1.1", v6: "fd00:198:18:1::1")
    public var defaultDstMac: String?
    public init() {}
}

/// The port gen sends on, as set-up finds it.
public struct GenInterface: Sendable {
    public var interface: String
    public var mtu: Int
    public var mac: MACAddress?
    public var rxQueues: Int
    /// The queues the lanes serve (default every RX queue), and the UMEM frame size.
    public var queues: [Int]
    public var frameSize: Int
    public init(interface: String, mtu: Int, mac: MACAddress?, rxQueues: Int, queues: [Int]?, frameSize: Int) {
        self.interface = interface; self.mtu = mtu; self.mac = mac; self.rxQueues = rxQueues
        self.queues = queues ?? Array(0..<rxQueues); self.frameSize = frameSize
    }
}

/// What gen sends, lane by lane: one plan per served queue.
public struct GenPlan: Sendable {
    public var sizes: [Int]
    public var flows: [FlowKey]
    public var lanes: [GenLanePlan]
    public var queues: [Int]
    /// The total rate asked for, in packets and bits per second (nil: as fast as it goes).
    public var totalPps: Double?
    public var requestedBps: Double?
    public var receiving: Bool
    public var rxPath: RxPath
    public var rxOnly: Bool
    /// The streams a receiver expects: what this side sends, or what --flows or
    /// --flows-file name; receive only with neither expects none in particular.
    public var expected: Int?

    public init(_ q: GenRequest, port: GenInterface) throws(LanesError) {
        // Sizes, checked for the address family: headers and the 16-byte signature must fit.
        let family = q.ipv6 ? "IPv6" : "IPv4"
        let vlan = q.vlan
        let minSize = (q.ipv6 ? 62 : 42) + Signature.length + (vlan == nil ? 0 : 4)
        // The largest frame: what the interface's MTU lets out (Ethernet and a VLAN
        // tag on top), and what the kernel takes as one AF_XDP packet (multi-buffer:
        // at most max_skb_frags + 1 frames; over one frame, sockets bind with XDP_USE_SG).
        let mtu = port.mtu, iface = port.interface
        let mtuFrame = mtu + 14 + (vlan == nil ? 0 : 4)
        let bufferLimit = port.frameSize * Engine.copyModeMaxSegments
        let maxSize = min(mtuFrame, bufferLimit)
        if q.size != nil && (q.imix || q.imixMix != nil) { throw LanesError("--size and --\(q.imix ? "imix" : "imix-mix") conflict", fix: "give one of them") }
        if q.imix && q.imixMix != nil { throw LanesError("--imix and --imix-mix conflict", fix: "give one of them") }
        func checked(_ list: [Int], _ option: String, _ text: String) throws(LanesError) -> [Int] {
            if let small = list.first(where: { $0 < minSize }) {
                throw LanesError("bad \(option) '\(text)': \(small) bytes is below the \(family)\(vlan == nil ? "" : "+VLAN") minimum of \(minSize) (headers and the 16-byte signature)",
                                 fix: "give sizes \(minSize)-\(maxSize)")
            }
            if let big = list.first(where: { $0 > mtuFrame }) {
                throw LanesError("bad \(option) '\(text)': \(big) bytes is over what \(iface)'s MTU of \(mtu) sends (\(mtuFrame) with the Ethernet header)",
                                 fix: "give sizes \(minSize)-\(maxSize), or raise the MTU: ip link set dev \(iface) mtu \(big - 14 - (vlan == nil ? 0 : 4)) (and the peer's)")
            }
            if let big = list.first(where: { $0 > bufferLimit }) {
                throw LanesError("bad \(option) '\(text)': \(big) bytes needs more than the \(Engine.copyModeMaxSegments) \(port.frameSize)-byte frames the kernel takes per packet",
                                 fix: "give sizes \(minSize)-\(maxSize)\(port.frameSize < 4096 ? ", or --frame-size 4096" : "")")
            }
            return list
        }
        if let mix = q.imixMix {
            guard let m = FrameSizes.parseIMIX(mix, minimum: 1, maximum: .max) else {
                throw LanesError("bad --imix-mix '\(mix)'", fix: "use SIZE:WEIGHT pairs like 64:7,570:4,1518:1 with sizes \(minSize)-\(maxSize)")
            }
            sizes = try checked(FrameSizes.pattern(m), "--imix-mix", mix)
        } else if q.imix {
            // The classic mix; its 64-byte frames become the family's smallest where 64 cannot hold it.
            sizes = FrameSizes.pattern(FrameSizes.simpleIMIX).map { max($0, minSize) }
        } else {
            let text = q.size ?? "\(max(64, minSize))"
            guard let l = FrameSizes.parseList(text, minimum: 1, maximum: .max) else {
                throw LanesError("bad --size '\(text)'", fix: "give sizes \(minSize)-\(maxSize) bytes (frame without FCS), e.g. \(max(64, minSize)) or \(max(64, minSize)),128")
            }
            sizes = try checked(l, "--size", text)
        }
        // Addresses.
        guard let srcMAC = q.srcMac.map({ MACAddress($0) }) ?? port.mac else {
            throw LanesError("bad --src-mac '\(q.srcMac ?? "")'", fix: "use six hex bytes like 02:4c:00:00:00:01")
        }
        // Receive only sends nothing: no next hop is needed.
        guard let dstMACText = q.dstMac ?? q.defaultDstMac ?? (q.rxOnly ? srcMAC.description : nil) else {
            throw LanesError("--dst-mac is needed off the testbed", fix: "give the next hop's MAC, e.g. --dst-mac 02:4c:00:00:00:02")
        }
        guard let dstMAC = MACAddress(dstMACText) else { throw LanesError("bad --dst-mac '\(dstMACText)'", fix: "use six hex bytes like 02:4c:00:00:00:02") }
        if let vlan, !(1...4094).contains(vlan) { throw LanesError("bad --vlan \(vlan)", fix: "VLAN ids are 1-4094") }
        if q.flows != nil && q.flowsFile != nil { throw LanesError("--flows and --flows-file conflict", fix: "the file gives the flows; drop --flows") }
        let flowCount = q.flows ?? 1
        guard flowCount >= 1 && flowCount <= 65536 else { throw LanesError("bad --flows \(flowCount)", fix: "use 1-65536") }
        if let count = q.count, count == 0 { throw LanesError("bad --count 0", fix: "give a positive packet count") }
        let rxQueues = port.rxQueues
        queues = port.queues
        // The receiver's RSS: its own key, table and hash fields where given, else the standard ones.
        if q.rssTable != nil && !q.rss { throw LanesError("--rss-table needs --rss", fix: "add --rss") }
        let receiverRSS = try q.rssTable.map(GenFlows.readRSS) ?? RSSTable(queues: rxQueues)
        if let file = q.flowsFile {
            flows = try GenFlows.read(file: file)
            if flows.contains(where: { $0.proto != 17 }) {
                throw LanesError("'\(file)' has TCP flows: gen sends UDP", fix: "give UDP flows (or none of the 'tcp' words)")
            }
        } else {
            let src = q.srcIp ?? (q.ipv6 ? q.defaultSrc.v6 : q.defaultSrc.v4)
            let dst = q.dstIp ?? (q.ipv6 ? q.defaultDst.v6 : q.defaultDst.v4)
            flows = try GenFlows.ranges(count: flowCount, src: src, dst: dst, srcPorts: q.srcPort, dstPorts: q.dstPort,
                                        rss: q.rss ? receiverRSS : nil, queues: rxQueues)
        }
        // Which lane sends which flow.
        var laneStreams = Array(repeating: [Int](), count: queues.count)
        if q.rss {
            for (i, f) in flows.enumerated() {
                let queue = receiverRSS.queue(for: f)
                guard let lane = queues.firstIndex(of: queue) else {
                    throw LanesError("flow \(f) maps to queue \(queue), which no lane serves", fix: "serve every queue (omit --queues) or drop --rss")
                }
                laneStreams[lane].append(i)
            }
        } else {
            for i in flows.indices { laneStreams[i % queues.count].append(i) }
        }
        let active = laneStreams.filter { !$0.isEmpty }.count
        let meanSize = Double(sizes.reduce(0, +)) / Double(sizes.count)
        if let rate = q.rate {
            guard let r = Rate.parse(rate) else { throw LanesError("bad --rate '\(rate)'", fix: "use e.g. 50000, 50kpps, 2Mpps, 500Mbps, 1Gbps") }
            let pps = r.packetsPerSecond(meanFrameBytes: meanSize)
            totalPps = pps
            requestedBps = pps * meanSize * 8
        }
        receiving = q.rx != nil || q.rxOnly
        rxPath = q.rx ?? .xsk
        rxOnly = q.rxOnly
        if rxPath == .xdp && !rxOnly {
            throw LanesError("--rx xdp counts the far end in XDP: it needs --rx-only", fix: "use --rx-only --rx xdp on the receiving port, or --rx xsk")
        }
        if rxOnly && (q.count != nil || q.rate != nil) { throw LanesError("--rx-only sends nothing: --count and --rate do not apply", fix: "stop it with --duration or SIGINT") }
        let laneCounts = GenPlan.shares(of: q.count, over: laneStreams.map { !$0.isEmpty })
        let perLanePps = totalPps.map { $0 / Double(active) }
        let receive = receiving, receiveOnly = rxOnly, flowList = flows, sizeList = sizes
        lanes = laneStreams.enumerated().map { i, streams in
            var p = GenLanePlan(streams: streams, flows: flowList, srcMAC: srcMAC, dstMAC: dstMAC, vlan: vlan, sizes: sizeList,
                                pps: streams.isEmpty ? nil : perLanePps, count: streams.isEmpty ? 0 : laneCounts[i], receive: receive)
            p.receiveOnly = receiveOnly
            return p
        }
        expected = rxOnly && q.flows == nil && q.flowsFile == nil ? nil : flows.count
    }

    /// `count` split over the lanes that send (`sends[i]`): equal shares, the
    /// remainder one each to the first ones; nil each without a count, 0 for a lane that sends nothing.
    public static func shares(of count: UInt64?, over sends: [Bool]) -> [UInt64?] {
        guard let count else { return sends.map { _ in nil } }
        let active = UInt64(sends.filter { $0 }.count)
        var given: UInt64 = 0
        return sends.map { s in
            guard s else { return 0 }
            defer { given += 1 }
            return count / active + (given < count % active ? 1 : 0)
        }
    }
}

/// Building the generator's flow list.
public enum GenFlows {
    public static func ranges(count: Int, src: String, dst: String, srcPorts: String, dstPorts: String, rss: RSSTable?, queues: Int) throws(LanesError) -> [FlowKey] {
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
    public static func readRSS(file: String) throws(LanesError) -> RSSTable {
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

    public static func read(file: String) throws(LanesError) -> [FlowKey] {
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

// MARK: gen's report

extension Report {
    /// One stream as a receiver saw it, by the id in its signature: counts merged
    /// over lanes or CPUs, and the flow and queue of its first packet (nil: none seen).
    public struct SeenStream {
        public var rx = StreamRx(), flow: FlowKey?, queue: Int?
        public init(rx: StreamRx = StreamRx(), flow: FlowKey? = nil, queue: Int? = nil) { self.rx = rx; self.flow = flow; self.queue = queue }
    }

    /// gen's report before what it sent and received: the plan's part.
    public init(gen plan: GenPlan, interface: String, durationS: Double, exitReason: ExitReason) {
        self.init(interface: interface, durationS: durationS, exitReason: exitReason)
        flows = plan.flows.count
        sizes = Array(Set(plan.sizes)).sorted()
        requestedPps = plan.totalPps
        requestedBps = plan.requestedBps
        cpuS = processCPUSeconds()
    }

    /// What was sent, over the sending span (`sendingS`, else the run).
    public mutating func setSent(packets: UInt64, bytes: UInt64, span: Double?) {
        sendingS = span
        let d = max(span ?? durationS, 1e-9)
        txPackets = packets; txBytes = bytes
        txPps = Double(packets) / d; txBps = Double(bytes) * 8 / d
    }

    /// Per-stream receive counts and latency: the same fields from either receiver.
    /// `seen` is indexed by stream id (every tracked id); a stream is reported when
    /// it brought packets or is expected (below `expected`: the flows this side
    /// sends, or was told of with --flows); a seen one past `expected` is marked
    /// unexpected. `sent[i]`: what this side sent of stream i (the same-port
    /// round trip); otherwise loss is the gaps below the highest sequence seen.
    public mutating func addReceive(_ seen: [SeenStream], untracked: UInt64, expected: Int?, sent: [UInt64],
                                    latency hist: LatencyHistogram, plannedFlows: [FlowKey]) {
        var streams: [Stream] = []
        for (i, s) in seen.enumerated() {
            let r = s.rx
            guard r.received + r.duplicates > 0 || i < expected ?? 0 else { continue }
            let sentHere = i < sent.count ? sent[i] : r.highest
            let flow = s.flow?.description ?? (i < plannedFlows.count ? plannedFlows[i].description : "?")
            streams.append(Stream(stream: i, flow: flow, queue: s.queue, sent: sentHere, received: r.received,
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
        latency = hist.count == 0 ? nil : Latency(hist)
    }

    /// gen's report of a run of its AF_XDP lanes (`tx xsk`, `--rx`, `--rx-only`).
    public init(gen plan: GenPlan, summary s: RunSummary, apps: [GenApp], choice: TxPathChoice) {
        self.init(gen: plan, interface: s.interface, durationS: s.durationS, exitReason: s.exitReason)
        bindMode = s.bindMode
        txPath = choice.path.rawValue
        txPathReason = choice.reason
        rxPath = plan.receiving ? "xsk" : nil
        setSent(packets: s.txPackets, bytes: s.txBytes, span: Report.sendingSpan(apps.map { ($0.firstSentNs, $0.lastSentNs) }))
        dropTxRingFull = s.lanes.reduce(0) { $0 + ($1.drops["drop_tx_ring_full"] ?? 0) }
        kernelRxDropped = s.lanes.reduce(0) { $0 + $1.xsk.rxDropped }
        lanes = zip(s.lanes, apps).map { l, a in
            var x = Lane(queue: l.queue, core: l.core)
            (x.txPackets, x.txBytes, x.streams, x.rxSigned) = (l.txPackets, l.txBytes, a.plan.streams.count, a.signedReceived)
            return x
        }
        framesBalanced = s.framesBalanced
        ec2Shaping = s.ec2Shaping
        fault = s.fault
        linkDownEvents = s.linkDownEvents
        cpuS = s.cpuS
        guard plan.receiving else { return }
        let flows = plan.flows
        var sent = Array(repeating: UInt64(0), count: flows.count)
        for a in apps { for i in 0..<flows.count { sent[i] += a.sequences[i] } }
        var hist = LatencyHistogram()
        for a in apps { hist.add(a.latency) }
        // Every tracked id, merged over the lanes; the flow and queue from the lane that saw most of it.
        let tracked = apps.map(\.trackedStreams).max() ?? 0
        let seen: [SeenStream] = (0..<tracked).map { i in
            var st = SeenStream()
            var most: UInt64 = 0
            for (l, a) in zip(s.lanes, apps) where i < a.trackedStreams && a.rx[i].received + a.rx[i].duplicates > 0 {
                let r = a.rx[i]
                st.rx.received += r.received; st.rx.duplicates += r.duplicates; st.rx.reordered += r.reordered
                st.rx.highest = max(st.rx.highest, r.highest)
                if r.received + r.duplicates > most { most = r.received + r.duplicates; st.flow = a.rxFlows[i]; st.queue = l.queue }
            }
            return st
        }
        addReceive(seen, untracked: apps.reduce(0) { $0 + $1.untrackedReceived }, expected: plan.expected,
                   sent: plan.rxOnly ? [] : sent, latency: hist, plannedFlows: flows)
    }
}
