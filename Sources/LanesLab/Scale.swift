import Foundation
import LanesXDP

/// EC2's per-flow ceilings (single 5-tuple): 5 Gbps outside a cluster placement
/// group, 10 Gbps inside one, 25 Gbps with ENA Express (AWS EC2 instance
/// network bandwidth documentation). `--cap-scale` shrinks them to what a veth
/// testbed carries.
public enum EC2Preset: String, CaseIterable, Sendable, Codable {
    case `default`, placementGroup = "placement-group", enaExpress = "ena-express"
    public var perFlowBps: Double {
        switch self {
        case .default: 5e9
        case .placementGroup: 10e9
        case .enaExpress: 25e9
        }
    }
}

/// `lanes scale`: single-flow versus multi-flow, over lane counts.
public struct ScaleConfig: Sendable {
    public var lanes: [Int] = [1, 2]
    public var flows: [Int] = [1, 2, 4, 8, 16, 32, 64]
    public var mode = "drop"
    public var repeats = 3
    public var duration = 1.0
    public var warmup = 0.5
    public var size = 64
    public var rate: String? = nil
    /// The cap actually applied (already scaled), bits per second.
    public var capBps: Double? = nil
    public var capDescription: String? = nil
    public var testbed = "lanes-scale"
    public init() {}
}

public struct ScalePoint: Codable, Sendable {
    public var lanes: Int
    public var flows: Int
    public var mode: String
    public var mppsMedian: Double
    public var mppsMin: Double
    public var mppsMax: Double
    public var gbpsMedian: Double
    public var offeredMppsMedian: Double
    public var queuesUsed: Int
    public var queuesExpected: Int
    public var perQueuePackets: [UInt64]
    public var policedPackets: UInt64
    public var generatorBound: Bool
    public var planMatched: Bool
    public var runs: [Double]
}

public struct ScaleResult: Codable, Sendable {
    public struct Machine: Codable, Sendable {
        public var cpuModel: String
        public var cores: Int
        public var kernel: String
        public var driver: String
        public var bindMode: String
        public var hostname: String
    }
    public var tool = "lanes scale"
    public var date: String
    public var machine: Machine
    public var mode: String
    public var frameSize: Int
    public var durationS: Double
    public var warmupS: Double
    public var repeats: Int
    public var capGbps: Double?
    public var capDescription: String?
    /// The signal that ended the sweep early ("SIGINT", "SIGTERM"); absent when it ran to the end.
    public var interrupted: String?
    public var points: [ScalePoint]
}

public enum ScaleRunner {
    static func median(_ v: [Double]) -> Double {
        let s = v.sorted()
        guard !s.isEmpty else { return 0 }
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }

    /// Checks what can be checked before any work: root, mode, lanes, flows, and
    /// that the testbed's name is free (a sweep removes its testbed at the end, so
    /// it never takes over one it did not create).
    public static func check(_ c: ScaleConfig) throws(LanesError) {
        try requireRoot(for: "lanes scale")
        guard ["drop", "macswap"].contains(c.mode) else {
            throw LanesError("mode '\(c.mode)' is not available", fix: "use --mode drop or macswap")
        }
        let online = Sysfs.onlineCPUs()
        if let bad = c.lanes.first(where: { $0 < 1 || $0 > online }) {
            throw LanesError("\(bad) lanes: this machine has \(online) online CPUs", fix: "use --lanes within 1-\(online)")
        }
        guard c.flows.allSatisfy({ $0 >= 1 && $0 <= 4096 }) else { throw LanesError("bad --flows list", fix: "use counts 1-4096") }
        guard c.repeats >= 1, c.duration > 0, c.warmup >= 0 else { throw LanesError("bad --repeat/--duration/--warmup") }
        let tb = Testbed(name: c.testbed)
        try Testbed.validate(name: tb.name)
        if let ns = tb.namespaces.first(where: NetworkNamespace.exists) {
            throw LanesError("testbed '\(tb.name)' exists (namespace \(ns)); a sweep builds and removes its own",
                             fix: "give --testbed a new name, or remove it with 'lanes testbed down --name \(tb.name)'")
        }
    }

    /// Runs the sweep. `progress` gets one line per measurement. When `stop` turns
    /// true (a signal), the children are interrupted, the testbed is removed and
    /// the points finished so far come back, with `interrupted` set by the caller.
    public static func run(_ c: ScaleConfig, stop: () -> Bool = { false }, progress: (String) -> Void) throws(LanesError) -> ScaleResult {
        try check(c)
        let online = Sysfs.onlineCPUs()
        let tb = Testbed(name: c.testbed)
        var points: [ScalePoint] = []
        var bindMode = "copy"
        let total = c.lanes.count * c.flows.count * c.repeats
        var done = 0
        defer { try? tb.down() }
        sweep: for l in c.lanes {
            if stop() { break sweep }
            // The "NIC" gets as many queues as lanes, as `ethtool -L` would set.
            try tb.up(queues: l)
            let queues = l == 1 ? "0" : "0-\(l - 1)"
            let dutCores = (0..<l).map { String($0 % online) }.joined(separator: ",")
            // The generator's lane for queue q runs on core q: with live frames (gen's
            // default here) a veth delivers a redirected frame to the peer's queue
            // `sending CPU % queues`, so the core decides the queue, as RSS would.
            let genCores = dutCores
            for f in c.flows {
                var runs: [Double] = [], offered: [Double] = []
                var perQueue = Array(repeating: UInt64(0), count: l)
                var policed: UInt64 = 0
                for r in 0..<c.repeats {
                    var dutArgs = [c.mode == "drop" ? "drop" : "fwd", "d0", "--netns", tb.dut, "--queues", queues, "--cores", dutCores,
                                   "--filter", "udp dport 9000", "--interval", "0.25", "--json",
                                   // A bound in case this process dies without stopping it.
                                   "--duration", "\(Int(c.warmup + c.duration + 60))"]
                    if c.mode == "macswap" { dutArgs += ["--mode", "macswap"] }
                    if let cap = c.capBps { dutArgs += ["--flow-cap", "\(Int(cap))bps"] }
                    let dut = try Child(dutArgs)
                    var waited = 0.0
                    while !xdpAttached(namespace: tb.dut, interface: "d0") && waited < 15 && !stop() { usleep(20_000); waited += 0.02 }
                    usleep(200_000)
                    if stop() { dut.interrupt(); _ = dut.wait(timeout: 5); break sweep }
                    var genArgs = ["gen", "--testbed", tb.name, "--queues", queues, "--cores", genCores, "--flows", "\(f)", "--rss",
                                   "--size", "\(c.size)", "--duration", "\(c.warmup + c.duration)", "--interval", "0", "--json"]
                    if let rate = c.rate { genArgs += ["--rate", rate] }
                    let gen = try Child.run(genArgs, stop: stop)
                    dut.interrupt()
                    let d = dut.wait()
                    if stop() { break sweep } // this point's runs are incomplete: not reported
                    guard gen.status == 0 else { throw LanesError("generator failed at \(l) lanes, \(f) flows: \(gen.stderr.split(separator: "\n").last ?? "")") }
                    guard d.status == 0 else { throw LanesError("lanes \(c.mode) failed at \(l) lanes, \(f) flows: \(d.stderr.split(separator: "\n").last ?? "")") }
                    let m = try measure(dut: d.stdout, gen: gen.stdout, warmup: c.warmup, duration: c.duration)
                    runs.append(m.mpps)
                    offered.append(m.offeredMpps)
                    for (i, v) in m.perQueue.enumerated() where i < l { perQueue[i] += v }
                    policed += m.policed
                    bindMode = m.bindMode
                    done += 1
                    progress("[\(done)/\(total)] lanes \(l) flows \(f) run \(r + 1): \(fmt(m.mpps)) Mpps received, \(fmt(m.offeredMpps)) Mpps offered")
                }
                let totalPkts = perQueue.reduce(0, +)
                let used = perQueue.filter { totalPkts > 0 && Double($0) > 0.01 * Double(totalPkts) }.count
                let expected = min(f, l)
                let med = median(runs)
                points.append(ScalePoint(lanes: l, flows: f, mode: c.mode, mppsMedian: med, mppsMin: runs.min() ?? 0, mppsMax: runs.max() ?? 0,
                                         gbpsMedian: med * 1e6 * Double(c.size) * 8 / 1e9, offeredMppsMedian: median(offered),
                                         queuesUsed: used, queuesExpected: expected, perQueuePackets: perQueue, policedPackets: policed,
                                         generatorBound: med >= 0.95 * median(offered) && c.capBps == nil,
                                         planMatched: used == expected, runs: runs))
            }
        }
        let uname = (try? Shell.run(["uname", "-r"]))?.stdout.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
        let cpu = (Sysfs.read("/proc/cpuinfo") ?? "").split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { String($0.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces) } ?? "?"
        let host = ProcessInfo.processInfo.hostName
        let date = ISO8601DateFormatter().string(from: Date())
        return ScaleResult(date: date, machine: .init(cpuModel: cpu, cores: online, kernel: uname, driver: "veth", bindMode: bindMode, hostname: host),
                           mode: c.mode, frameSize: c.size, durationS: c.duration, warmupS: c.warmup, repeats: c.repeats,
                           capGbps: c.capBps.map { $0 / 1e9 }, capDescription: c.capDescription, points: points)
    }

    struct Measurement { var mpps: Double; var offeredMpps: Double; var perQueue: [UInt64]; var policed: UInt64; var bindMode: String }

    /// Received rate from the dut's interval lines inside the measured window;
    /// per-queue packets and policed drops from its summary.
    static func measure(dut: String, gen: String, warmup: Double, duration: Double) throws(LanesError) -> Measurement {
        let lines = dut.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        guard let summary = lines.last, summary["lanes"] != nil else { throw LanesError("no summary from the dut") }
        let intervals = lines.dropLast().compactMap { l -> (Double, Double)? in
            guard let t = l["elapsed_s"] as? Double, let r = l["rx_pps"] as? Double else { return nil }
            return (t, r)
        }
        // Traffic starts when the first interval sees packets; skip the warm-up after it, and the last (partial) interval.
        let active = intervals.drop { $0.1 == 0 }
        var window: [Double] = []
        if let t0 = active.first?.0 {
            window = active.filter { $0.0 >= t0 + warmup && $0.0 <= t0 + warmup + duration }.map(\.1)
            if window.isEmpty { window = active.map(\.1) }
        }
        let mpps = window.isEmpty ? 0 : window.reduce(0, +) / Double(window.count) / 1e6
        let lanes = summary["lanes"] as? [[String: Any]] ?? []
        let perQueue = lanes.map { UInt64($0["rx_packets"] as? Int ?? 0) }
        let policed = lanes.reduce(UInt64(0)) { $0 + UInt64((($1["xdp"] as? [String: Any])?["policed"] as? Int) ?? 0) }
        let g = gen.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] } ?? [:]
        let offered = (g["tx_pps"] as? Double ?? 0) / 1e6
        return Measurement(mpps: mpps, offeredMpps: offered, perQueue: perQueue, policed: policed, bindMode: summary["bind_mode"] as? String ?? "?")
    }

    static func fmt(_ v: Double) -> String { String(format: "%.3f", v) }

    /// The Markdown table.
    public static func table(_ r: ScaleResult) -> String {
        var s = "| lanes | flows | mode | Mpps median | min | max | Gbps | offered Mpps | queues used | notes |\n"
        s += "|---:|---:|---|---:|---:|---:|---:|---:|---:|---|\n"
        for p in r.points {
            var notes: [String] = []
            if p.generatorBound { notes.append("generator-bound") }
            if !p.planMatched { notes.append("expected \(p.queuesExpected) queues") }
            if p.policedPackets > 0 { notes.append("policed \(p.policedPackets)") }
            s += "| \(p.lanes) | \(p.flows) | \(p.mode) | \(fmt(p.mppsMedian)) | \(fmt(p.mppsMin)) | \(fmt(p.mppsMax)) | \(fmt(p.gbpsMedian)) | \(fmt(p.offeredMppsMedian)) | \(p.queuesUsed)/\(p.lanes) | \(notes.joined(separator: ", ")) |\n"
        }
        if let cap = r.capGbps { s += "\nPer-flow cap: \(fmt(cap * 1000)) Mbps (\(r.capDescription ?? "")) = \(fmt(cap * 1e9 / Double(r.frameSize * 8) / 1e6)) Mpps of \(r.frameSize)-byte frames.\n" }
        return s
    }
}
