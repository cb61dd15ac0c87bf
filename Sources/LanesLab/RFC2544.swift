import Foundation
import LanesXDP

/// `lanes rfc2544`: the highest rate a device forwards with no loss (NDR) and
/// with a small loss ratio (PDR), per frame size and flow count, by binary search
/// with a verification trial, and the latency at a fraction of NDR. Traffic goes
/// gen:g0 -> dut -> sink:s0 on a testbed of its own; the receiver counts signed
/// frames in XDP on s0 (`gen --rx-only --rx xdp`), so it is never the bottleneck.
///
/// The search: one unpaced trial gives the generator's maximum M (the upper
/// bound: a device that loses nothing at M is reported "at least M,
/// generator-bound", never as an NDR). Then bisection of [0, M] until the
/// bracket is narrower than `precision` of its top; then a longer verification
/// trial at the lower bound; if that one loses, the bound becomes the top and
/// the search goes on below it (at most 3 verifications). PDR reuses every
/// trial and bisects from the bracket the NDR search left.
public struct RFC2544Config: Sendable {
    public var dut = "lanes"
    public var sizes = [64, 1518]
    public var flows = [1, 64]
    public var trialSeconds = 2.0
    public var verifySeconds = 5.0
    /// Relative width of the final bracket, e.g. 0.005.
    public var precision = 0.005
    /// The PDR's loss ratio, e.g. 0.005 (FD.io CSIT's).
    public var pdr = 0.005
    /// Latency is measured at these fractions of NDR.
    public var latencyAt = [0.1, 0.5, 0.9, 1.0]
    public var testbed = "lanes-2544"
    /// A known-bad device for checking the method: `lanes fwd --mode io --impair SPEC`.
    public var impair: String? = nil
    public init() {}
}

public struct RFC2544Trial: Codable, Sendable {
    public var size: Int
    public var flows: Int
    /// "max", "search", "verify" or "latency".
    public var kind: String
    /// The rate asked for (nil: as fast as the generator goes).
    public var requestedPps: Double?
    public var seconds: Double
    public var offeredPps: Double
    public var txPackets: UInt64
    public var rxPackets: UInt64
    public var lossRatio: Double
    public var latencyNs: [String: UInt64]?
}

public struct RFC2544Result: Codable, Sendable {
    public struct Rate: Codable, Sendable {
        /// Frames per second, the lower bound of the final bracket (verified).
        public var pps: Double
        public var gbps: Double
        /// The bracket's top: the lowest rate seen to lose more than the ratio.
        public var upperPps: Double?
        /// True when no trial lost enough: the rate is at least `pps`, the generator's maximum.
        public var generatorBound: Bool
    }
    public struct Point: Codable, Sendable {
        public var size: Int
        public var flows: Int
        public var generatorMaxPps: Double
        public var ndr: Rate
        public var pdr: Rate
        /// Latency (one-way, from the signatures) at fractions of NDR: "0.5" -> percentiles.
        public var latency: [String: [String: UInt64]]
    }
    public var tool = "lanes rfc2544"
    public var date: String
    public var machine: String
    public var dut: String
    public var method: String
    public var trialSeconds: Double
    public var verifySeconds: Double
    public var precision: Double
    public var pdrLossRatio: Double
    public var points: [Point]
    public var trials: [RFC2544Trial]
    public var interrupted: String?
}

public enum RFC2544Runner {
    public static func check(_ c: RFC2544Config) throws(LanesError) {
        try requireRoot(for: "lanes rfc2544")
        guard ["lanes", "kernel"].contains(c.dut) else { throw LanesError("bad --dut '\(c.dut)'", fix: "use lanes (lanes fwd --mode l3) or kernel (Linux IP forwarding)") }
        guard !c.sizes.isEmpty, c.sizes.allSatisfy({ $0 >= 64 && $0 <= 3408 }) else { throw LanesError("bad --sizes", fix: "give frame sizes 64-3408, e.g. 64,1518") }
        guard !c.flows.isEmpty, c.flows.allSatisfy({ $0 >= 1 && $0 <= 4096 }) else { throw LanesError("bad --flows", fix: "give flow counts 1-4096, e.g. 1,64") }
        guard c.trialSeconds >= 0.2, c.verifySeconds >= c.trialSeconds else { throw LanesError("bad --trial-duration/--verify-duration", fix: "trials of 0.2 s or more, the verification at least as long") }
        guard c.precision > 0 && c.precision < 0.5 else { throw LanesError("bad --precision", fix: "give a fraction like 0.5%") }
        guard c.pdr > 0 && c.pdr < 1 else { throw LanesError("bad --pdr", fix: "give a loss ratio like 0.5%") }
        try Testbed.validate(name: c.testbed)
        let tb = Testbed(name: c.testbed)
        if let ns = tb.namespaces.first(where: NetworkNamespace.exists) {
            throw LanesError("testbed '\(tb.name)' exists (namespace \(ns)); rfc2544 builds and removes its own",
                             fix: "give --testbed a new name, or remove it with 'lanes testbed down --name \(tb.name)'")
        }
    }

    /// Trials the search will run at most, and their time, for the estimate printed at the start.
    public static func estimate(_ c: RFC2544Config) -> (trials: Int, seconds: Double) {
        let bisections = Int((log2(1 / c.precision)).rounded(.up))
        let perPoint = 1 + 2 * bisections + 2 + c.latencyAt.count
        let seconds = Double(c.sizes.count * c.flows.count) * (Double(perPoint - 2) * (c.trialSeconds + 1) + 2 * (c.verifySeconds + 1))
        return (perPoint * c.sizes.count * c.flows.count, seconds)
    }

    public static func run(_ c: RFC2544Config, stop: () -> Bool = { false }, progress: (String) -> Void) throws(LanesError) -> RFC2544Result {
        try check(c)
        let tb = Testbed(name: c.testbed)
        defer { try? tb.down() }
        try tb.up(queues: Sysfs.onlineCPUs())
        var forwarder: Child? = nil
        defer { if let f = forwarder { f.interrupt(); _ = f.wait(timeout: 10) } }
        if c.dut == "lanes" {
            let mode = c.impair.map { ["--mode", "io", "--impair", $0] } ?? ["--mode", "l3"]
            let f = try Child(["fwd", "--testbed", tb.name] + mode + ["--filter", "udp dport 9000", "--interval", "0", "--json"])
            forwarder = f
            var waited = 0.0
            while !xdpAttached(namespace: tb.dut, interface: "d0") && waited < 15 { usleep(20_000); waited += 0.02 }
            guard xdpAttached(namespace: tb.dut, interface: "d0") else {
                f.interrupt()
                throw LanesError("lanes fwd did not start on the dut: \(f.wait(timeout: 5).stderr.split(separator: "\n").last ?? "")")
            }
            usleep(300_000)
        }
        if c.dut == "kernel" {
            // As in `lanes scale`: with veth's default softirq the kernel's forwarding runs
            // in the sender's context and slows the generator to its own pace (every trial
            // lossless, generator-bound); a NAPI kthread per queue, pinned, decouples them.
            _ = try ScaleRunner.setNAPI(.threaded, testbed: tb, cores: (0..<Sysfs.onlineCPUs()).map { $0 })
        }
        var trials: [RFC2544Trial] = []
        var points: [RFC2544Result.Point] = []
        func trial(_ size: Int, _ flows: Int, _ kind: String, _ pps: Double?, _ seconds: Double) throws(LanesError) -> RFC2544Trial {
            let rx = try Child(["gen", "s0", "--netns", tb.sink, "--rx-only", "--rx", "xdp", "--flows", "\(flows)",
                                "--interval", "0", "--json", "--duration", "\(Int(seconds + 30))"])
            var waited = 0.0
            while !xdpAttached(namespace: tb.sink, interface: "s0") && waited < 15 { usleep(20_000); waited += 0.02 }
            usleep(200_000)
            var args = ["gen", "--testbed", tb.name, "--flows", "\(flows)", "--size", "\(size)", "--duration", "\(seconds)", "--interval", "0", "--json"]
            if let pps { args += ["--rate", "\(Int(pps.rounded()))pps"] }
            let g = try Child.run(args, timeout: seconds + 60, stop: stop)
            usleep(300_000) // the last frames land
            rx.interrupt()
            let r = rx.wait(timeout: 10)
            guard g.status == 0 else { throw LanesError("generator failed at \(size) B, \(flows) flows: \(g.stderr.split(separator: "\n").last ?? "")") }
            guard r.status == 0 else { throw LanesError("receiver failed at \(size) B, \(flows) flows: \(r.stderr.split(separator: "\n").last ?? "")") }
            func last(_ s: String) -> [String: Any] {
                s.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] } ?? [:]
            }
            let gj = last(g.stdout), rj = last(r.stdout)
            let tx = UInt64(gj["tx_packets"] as? Int ?? 0), got = UInt64(rj["rx_packets"] as? Int ?? 0)
            let latency = (rj["latency"] as? [String: Any])?.compactMapValues { ($0 as? Int).map(UInt64.init) }
            let t = RFC2544Trial(size: size, flows: flows, kind: kind, requestedPps: pps, seconds: seconds,
                                 offeredPps: gj["tx_pps"] as? Double ?? 0, txPackets: tx, rxPackets: got,
                                 lossRatio: tx == 0 ? 1 : Double(tx - min(tx, got)) / Double(tx), latencyNs: latency)
            if stop() { return t } // cut short by a signal: not a trial
            trials.append(t)
            progress("[\(trials.count)] \(size) B, \(flows) flow\(flows == 1 ? "" : "s"), \(kind) at \(pps.map { String(format: "%.4f Mpps", $0 / 1e6) } ?? "max"): offered \(String(format: "%.4f", t.offeredPps / 1e6)) Mpps, loss \(String(format: "%.5f%%", t.lossRatio * 100))")
            return t
        }
        func gbps(_ pps: Double, _ size: Int) -> Double { pps * Double(size) * 8 / 1e9 }
        points: for size in c.sizes {
            for flows in c.flows {
                if stop() { break points }
                let top = try trial(size, flows, "max", nil, c.trialSeconds)
                let maximum = top.offeredPps
                var seen: [(pps: Double, loss: Double)] = [(maximum, top.lossRatio)]
                /// Bisection for the highest rate losing at most `ratio`, from [lo, hi], with verification.
                /// `floor`: a rate already verified for this ratio (PDR: the NDR), never gone below.
                func search(_ ratio: Double, _ startLo: Double, _ startHi: Double, floor: Double = 0) throws(LanesError) -> RFC2544Result.Rate {
                    if top.lossRatio <= ratio { return .init(pps: maximum, gbps: gbps(maximum, size), upperPps: nil, generatorBound: true) }
                    var lo = startLo, hi = startHi, verifications = 0
                    while true {
                        // Until the bracket is narrow enough, or its top is below 1 kpps (a
                        // device that loses at every rate has no such rate: "none").
                        while hi - lo > c.precision * hi && hi > 1000 && !stop() {
                            let mid = (lo + hi) / 2
                            let t = try trial(size, flows, "search", mid, c.trialSeconds)
                            seen.append((mid, t.lossRatio))
                            if t.lossRatio <= ratio { lo = mid } else { hi = mid }
                        }
                        if stop() || lo == 0 || verifications == 3 || (floor > 0 && lo <= floor) { lo = max(lo, floor); break }
                        verifications += 1
                        let v = try trial(size, flows, "verify", lo, c.verifySeconds)
                        seen.append((lo, v.lossRatio))
                        if v.lossRatio <= ratio { break }
                        hi = lo
                        lo = max(floor, lo * (1 - 2 * c.precision))
                    }
                    return .init(pps: lo, gbps: gbps(lo, size), upperPps: hi, generatorBound: false)
                }
                let ndr = try search(0, 0, maximum)
                // PDR from what the trials showed: at least NDR, below the lowest rate that lost more than the ratio.
                let pdrLo = seen.filter { $0.loss <= c.pdr }.map(\.pps).max() ?? ndr.pps
                let pdrHi = seen.filter { $0.loss > c.pdr && $0.pps > pdrLo }.map(\.pps).min() ?? maximum
                let pdr = try search(c.pdr, max(pdrLo, ndr.pps), pdrHi, floor: ndr.pps)
                var latency: [String: [String: UInt64]] = [:]
                if !ndr.generatorBound || ndr.pps > 0 {
                    for f in c.latencyAt where !stop() && ndr.pps > 0 {
                        let t = try trial(size, flows, "latency", ndr.pps * f, c.trialSeconds)
                        if let l = t.latencyNs { latency[String(format: "%g", f)] = l }
                    }
                }
                if stop() { break points }
                points.append(.init(size: size, flows: flows, generatorMaxPps: maximum, ndr: ndr, pdr: pdr, latency: latency))
            }
        }
        let cpu = (Sysfs.read("/proc/cpuinfo") ?? "").split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { String($0.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces) } ?? "?"
        let method = "binary search between 0 and the generator's maximum to \(c.precision * 100)% of the bracket's top, \(c.trialSeconds) s trials, a \(c.verifySeconds) s verification at the result (at most 3); loss = frames sent less frames counted at sink:s0 (XDP); PDR loss ratio \(c.pdr * 100)%"
        return RFC2544Result(date: ISO8601DateFormatter().string(from: Date()), machine: "\(cpu), \(Sysfs.onlineCPUs()) CPUs",
                             dut: c.dut == "kernel" ? "Linux IP forwarding" : c.impair.map { "lanes fwd --mode io --impair \($0)" } ?? "lanes fwd --mode l3", method: method,
                             trialSeconds: c.trialSeconds, verifySeconds: c.verifySeconds, precision: c.precision, pdrLossRatio: c.pdr,
                             points: points, trials: trials, interrupted: nil)
    }

    /// The Markdown report: device, machine, method, then throughput and latency per size and flow count.
    public static func report(_ r: RFC2544Result) -> String {
        func rate(_ x: RFC2544Result.Rate) -> String {
            x.pps == 0 && !x.generatorBound ? "none (every trial lost more)" : x.generatorBound ? String(format: "at least %.3f (generator-bound)", x.pps / 1e6) : String(format: "%.3f", x.pps / 1e6)
        }
        var s = "# \(r.tool): \(r.dut)\n\nMachine: \(r.machine). Method: \(r.method).\n\n"
        s += "| frame B | flows | NDR Mpps | NDR Gbps | PDR Mpps | PDR Gbps | generator max Mpps |\n|---:|---:|---|---:|---|---:|---:|\n"
        for p in r.points {
            s += "| \(p.size) | \(p.flows) | \(rate(p.ndr)) | \(String(format: "%.3f", p.ndr.gbps)) | \(rate(p.pdr)) | \(String(format: "%.3f", p.pdr.gbps)) | \(String(format: "%.3f", p.generatorMaxPps / 1e6)) |\n"
        }
        let withLatency = r.points.filter { !$0.latency.isEmpty }
        if !withLatency.isEmpty {
            s += "\nLatency (one-way, ns) at fractions of NDR:\n\n| frame B | flows | load | min | p50 | p90 | p99 | p99.9 | max |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
            for p in withLatency {
                for (load, l) in p.latency.sorted(by: { Double($0.key) ?? 0 < Double($1.key) ?? 0 }) {
                    let v = ["min_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"].map { l[$0].map(String.init) ?? "-" }
                    s += "| \(p.size) | \(p.flows) | \(Int((Double(load) ?? 0) * 100))% | " + v.joined(separator: " | ") + " |\n"
                }
            }
        }
        s += "\n\(r.trials.count) trials (every one in the JSON).\n"
        return s
    }
}
