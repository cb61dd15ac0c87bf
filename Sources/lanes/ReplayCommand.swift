import ArgumentParser
import Foundation
import LanesCore
import LanesEngine
import LanesLab
import LanesPacket
import LanesReport
import LanesXDP

/// `lanes replay`: a pcap or pcapng file's packets, as they are, through AF_XDP.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Send a pcap or pcapng capture's packets through AF_XDP: original timing, a multiple of it, a fixed rate or top speed.",
        discussion: """
        The file is loaded into memory once and checked before anything is sent: a
        truncated record, a record captured shorter than its packet (snaplen), and a
        packet over the interface's MTU or the UMEM frame are each counted and named;
        --skip-bad sends the rest. Packets are spread over the lanes by flow (5-tuple
        Toeplitz hash; fragments by their addresses; non-IP on the first lane), so each
        flow keeps its order. A timed replay (the file's timing, --speed, --rate) keeps
        the file's order across lanes too: one schedule for the whole file, and no lane
        sends a packet before every earlier one has gone out. --topspeed keeps only
        each flow's order (flows on different lanes may interleave differently).
        Rates count frames without FCS.
        Examples:
          lanes replay trace.pcap                      (gen:g0 of the testbed, original timing)
          lanes replay trace.pcapng --speed 10 --loop 5
          lanes replay trace.pcap eth1 --rate 1Mpps --dst-mac 02:00:00:00:00:01
        """)
    @Argument(help: "The pcap or pcapng file (Ethernet).") var file: String
    @OptionGroup var options: EngineOptions<GenPort>
    @Option(help: "Replay at X times the original timing (e.g. 2: twice as fast).") var speed: Double?
    @Option(help: "Fixed total rate instead of the file's timing: 50000, 50kpps, 1Mpps, 500Mbps.") var rate: String?
    @Flag(help: "As fast as the lanes go (each flow keeps its order; flows on different lanes may interleave differently).") var topspeed = false
    @Option(help: "Passes over the file.") var loop = 1
    @Option(help: "Stop after N packets in total.") var count: UInt64?
    @Option(help: "Rewrite every packet's destination MAC.") var dstMac: String?
    @Option(help: "Rewrite every packet's source MAC.") var srcMac: String?
    @Flag(help: "Send the good packets of a file with bad ones (counted) instead of refusing it.") var skipBad = false

    func run() throws {
        let timing = try parseTiming()
        guard loop >= 1 else { throw LanesError("bad --loop \(loop)", fix: "give 1 or more passes") }
        if let count, count == 0 { throw LanesError("bad --count 0", fix: "give a positive packet count") }
        let dst = try dstMac.map { t in try MACAddress(t).orThrow(LanesError("bad --dst-mac '\(t)'", fix: "use six hex bytes like 02:4c:00:00:00:02")) }
        let src = try srcMac.map { t in try MACAddress(t).orThrow(LanesError("bad --src-mac '\(t)'", fix: "use six hex bytes like 02:4c:00:00:00:02")) }
        let loaded = try Self.load(file)
        var config = try options.prepare()
        let mtu = Sysfs.mtu(of: config.interface) ?? 1500
        // Over one frame, a packet goes out in several (AF_XDP multi-buffer), at most the kernel's per-packet limit.
        let check = Self.check(loaded.records, cut: loaded.cut, mtu: mtu, frameBytes: config.umem.frameSize * Engine.copyModeMaxSegments)
        if !check.bad.isEmpty && !skipBad {
            throw LanesError("'\(file)': " + check.bad.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
                             + (check.first.map { " (first: \($0))" } ?? ""),
                             fix: "--skip-bad sends the other \(check.good.count)" + (check.bad["over the frame"] != nil ? ", or a larger --frame-size" : ""))
        }
        guard !check.good.isEmpty else { throw LanesError("'\(file)' has no packet to send", fix: "give a capture with Ethernet packets") }
        let (txq, _) = try InterfaceInfo.queueCount(config.interface)
        let queues = config.queues ?? Array(0..<txq)
        config.queues = queues
        // Send only: no XDP program, so what arrives on the port stays with the kernel.
        config.attachProgram = false
        config.largestPacket = check.good.map(\.data.count).max() ?? 0
        let trace = ReplayTrace(check.good, srcMAC: src, dstMAC: dst)
        let laneOf = check.good.map { ReplayTrace.lane(of: $0.data, lanes: queues.count) }
        var perLane = Array(repeating: [Int32](), count: queues.count)
        for (i, l) in laneOf.enumerated() { perLane[l].append(Int32(i)) }
        // Packets each lane sends: whole passes, and the part of the last pass --count allows.
        let n = UInt64(check.good.count)
        let total = min(count ?? .max, n * UInt64(loop))
        let partial = Int(total % n)
        let totals = perLane.indices.map { l in UInt64(perLane[l].count) * (total / n) + UInt64(laneOf[0..<partial].filter { $0 == l }.count) }
        let schedule = ReplaySchedule(first: perLane.indices.map { ReplayApp.firstPacket(indices: perLane[$0], total: totals[$0]) },
                                      ordered: timing != .topspeed)
        let timingText: String, reqPps: Double?, reqBps: Double?
        switch timing {
        case .original(let s): timingText = s == 1 ? "original" : "original x\(s)"; (reqPps, reqBps) = (nil, nil)
        case .pps(let p): timingText = "rate \(fmtRate(p, "pps"))"; (reqPps, reqBps) = (p, nil)
        case .bps(let b): timingText = "rate \(fmtRate(b, "bps"))"; (reqPps, reqBps) = (nil, b)
        case .topspeed: timingText = "topspeed"; (reqPps, reqBps) = (nil, nil)
        }
        let json = options.json
        let skipped = check.bad
        try options.run(config, mode: "replay \(file) (\(check.good.count) packets, \(timingText), \(loop) pass(es))", grace: 0.05, report: { (summary: RunSummary, apps: [ReplayApp]) in
            let span = Report.sendingSpan(apps.map { ($0.firstSentNs, $0.lastSentNs) })
            let sent = apps.reduce(0) { $0 + $1.sent }, bytes = apps.reduce(0) { $0 + $1.sentBytes }
            let d = max(span ?? summary.durationS, 1e-9)
            let speed: Double = if case .original(let s) = timing { s } else { 1 }
            var r = Report(interface: summary.interface, durationS: summary.durationS, exitReason: summary.exitReason)
            (r.file, r.packetsInFile, r.skipped, r.timing) = (file, loaded.records.count + (loaded.cut == nil ? 0 : 1), skipped, timingText)
            (r.sentPackets, r.sentBytes, r.sendingS) = (sent, bytes, span)
            (r.pps, r.bps, r.requestedPps, r.requestedBps) = (Double(sent) / d, Double(bytes) * 8 / d, reqPps, reqBps)
            r.fileSpanS = Double(trace.spanNs) / 1e9 / speed
            r.lanes = zip(summary.lanes, apps).map { l, a in
                var x = Report.Lane(queue: l.queue)
                (x.packets, x.bytes) = (a.sent, a.sentBytes)
                return x
            }
            r.framesBalanced = summary.framesBalanced
            if json { printJSONLine(r); return }
            print("replay: \(sent) packets, \(bytes) bytes in \(format2(span ?? summary.durationS)) s: \(fmtRate(r.pps ?? 0, "pps")), \(fmtRate(r.bps ?? 0, "bps"))"
                  + (reqPps.map { " (requested \(fmtRate($0, "pps")))" } ?? "") + (reqBps.map { " (requested \(fmtRate($0, "bps")))" } ?? "")
                  + ", \(timingText), stopped by \(summary.exitReason)")
            if !skipped.isEmpty { print("  skipped: " + skipped.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")) }
            for l in r.lanes ?? [] { print("  q\(l.queue ?? 0): \(l.packets ?? 0) packets, \(l.bytes ?? 0) bytes") }
        }) { _, i in
            ReplayApp(trace: trace, indices: perLane[i], total: totals[i], timing: timing, schedule: schedule, lane: i)
        }
    }

    func parseTiming() throws -> ReplayTiming {
        let given = [speed != nil, rate != nil, topspeed].filter { $0 }.count
        guard given <= 1 else { throw LanesError("--speed, --rate and --topspeed conflict", fix: "give one of them") }
        if let speed {
            guard speed > 0 && speed.isFinite else { throw LanesError("bad --speed \(speed)", fix: "give a multiple > 0, e.g. 2") }
            return .original(speed: speed)
        }
        if let rate {
            switch Rate.parse(rate) {
            case .pps(let p)? where p > 0: return .pps(p)
            case .bps(let b)? where b > 0: return .bps(b)
            default: throw LanesError("bad --rate '\(rate)'", fix: "use e.g. 50000, 50kpps, 1Mpps or 500Mbps")
            }
        }
        return topspeed ? .topspeed : .original(speed: 1)
    }

    /// The file's records and the damage that cut it short (nil: none); a file that
    /// is missing or not a capture is a one-line error.
    static func load(_ file: String) throws -> (records: [PcapRecord], cut: PcapError?) {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw LanesError("cannot read '\(file)': \(FileManager.default.fileExists(atPath: file) ? "permission denied" : "no such file")", fix: "give a pcap or pcapng file")
        }
        do { return try Pcap.readPrefix(Array(data)) } catch { throw LanesError("bad capture '\(file)': \(error)", fix: "give a pcap or pcapng capture of Ethernet frames") }
    }

    /// The records fit to send, and the rest counted by cause, with the first bad one named.
    static func check(_ records: [PcapRecord], cut: PcapError?, mtu: Int, frameBytes: Int) -> (good: [PcapRecord], bad: [String: Int], first: String?) {
        var good: [PcapRecord] = [], bad: [String: Int] = [:], first: String? = nil
        func count(_ cause: String, _ what: String) { bad[cause, default: 0] += 1; if first == nil { first = what } }
        for (i, r) in records.enumerated() {
            func type(at o: Int) -> UInt16 { r.data.count >= o + 2 ? UInt16(r.data[o]) << 8 | UInt16(r.data[o + 1]) : 0 }
            let vlanTags = [0x8100, 0x88a8].contains(type(at: 12)) ? (type(at: 16) == 0x8100 ? 2 : 1) : 0
            if r.data.count < r.originalLength { count("shorter than their packet (snaplen)", "record \(i): \(r.data.count) of \(r.originalLength) bytes captured") }
            else if r.data.count < 14 { count("shorter than an Ethernet header", "record \(i): \(r.data.count) bytes") }
            else if r.data.count > frameBytes { count("over the frame", "record \(i): \(r.data.count) bytes, frames hold \(frameBytes)") }
            else if r.data.count > mtu + 14 + 4 * vlanTags { count("over the MTU", "record \(i): \(r.data.count) bytes, MTU \(mtu)") }
            else { good.append(r) }
        }
        if let cut { count("truncated", "record \(records.count): \(cut)") }
        return (good, bad, first)
    }
}

extension Optional {
    func orThrow(_ e: @autoclosure () -> Error) throws -> Wrapped {
        guard let v = self else { throw e() }
        return v
    }
}
