import Foundation
import LanesCore
import LanesReport
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
    public var rate: Rate? = nil
    /// The cap actually applied (already scaled), bits per second.
    public var capBps: Double? = nil
    public var capDescription: String? = nil
    public var testbed = "lanes-scale"
    /// The devices under test, in order: "lanes" (XDP + AF_XDP lanes) and/or "kernel" (UDP sockets).
    public var duts: [String] = ["lanes"]
    /// Where the dut's veth does its receive work: nil picks per dut (see `NAPIMode.default(for:)`).
    public var napi: NAPIMode? = nil
    /// The VM testbed: the dut is a QEMU guest's virtio_net d0 (the lanes run there
    /// through `lanes testbed exec`), its queues set with `ethtool -L` per lane count,
    /// the generator's flows planned by the guest device's own RSS.
    public var vm = false
    /// Two hosts (`--gen-host`/`--dut-host`): the generator's and the dut's ports,
    /// each on its host, reached over SSH; nil: the built-in testbed.
    public var sides: SweepSides? = nil
    public init() {}
}

/// The generator's and the dut's side of a sweep between two hosts.
public struct SweepSides: Sendable {
    public var gen: (host: HostSpec, port: String)
    public var dut: (host: HostSpec, port: String)
    public var access: SSHAccess
    /// The flows' source and destination addresses (nil: the testbed's 198.18.0.1 ->
    /// 198.18.1.1) and the MAC they are sent to (nil: the dut port's, learnt there).
    public var genIP: String? = nil, dutIP: String? = nil, dutMAC: String? = nil
    public init(gen: (HostSpec, String), dut: (HostSpec, String), access: SSHAccess) {
        self.gen = gen; self.dut = dut; self.access = access
    }
}

/// Where a veth's receive processing (XDP, the copy into UMEM, or the IP/UDP
/// stack) runs. `softirq`: in the sender's NAPI softirq, on the sending core
/// (veth's default). `threaded`: in a NAPI kthread per queue (/sys/class/net/DEV/
/// threaded), pinned to that queue's lane core, as a NIC's per-queue interrupt
/// affinity would place it.
public enum NAPIMode: String, CaseIterable, Sendable, Codable {
    case softirq, threaded
    /// Measured on the 2-vCPU testbed (2026-12-02, 64-byte frames, 2 s): Lanes
    /// received 1.47 Mpps (1 flow) and 2.58 Mpps (16 flows, 2 lanes) with softirq
    /// against 1.07 and 2.16 threaded, where the kthreads compete with generator and
    /// lanes for the same two cores; so Lanes runs softirq. The kernel stack with
    /// softirq does its whole receive path in the sender's context and so throttles
    /// the generator to its own speed (0.63 Mpps offered, 0.64 received: every
    /// point reads generator-bound); threaded, the generator offers 1.8 Mpps and the
    /// stack takes what it can (0.36 Mpps): device-bound, as on a NIC. So the
    /// kernel runs threaded.
    public static func `default`(for dut: String) -> NAPIMode { dut == "kernel" ? .threaded : .softirq }
}

public struct ScalePoint: Codable, Sendable {
    public var lanes: Int
    public var flows: Int
    /// "lanes" or "kernel".
    public var dut: String
    public var napi: String
    public var mode: String
    public var mppsMedian: Double
    public var mppsMin: Double
    public var mppsMax: Double
    public var gbpsMedian: Double
    public var offeredMppsMedian: Double
    /// Queues (lanes) or sockets (kernel) that got over 1% of the packets.
    public var queuesUsed: Int
    public var queuesExpected: Int
    public var perQueuePackets: [UInt64]
    public var policedPackets: UInt64
    public var generatorBound: Bool
    /// "device" (it took less than offered), "generator" (it took all), "policer" (the per-flow cap dropped).
    public var bound: String
    public var planMatched: Bool
    public var runs: [Double]
    /// Over all runs of the point: frames offered (sent) and received by the dut.
    public var offeredPackets: UInt64
    public var receivedPackets: UInt64
    /// Where the difference went, over all runs: `xsk_fill_ring_empty` (the lane did
    /// not refill in time: XDP_STATISTICS rx_dropped), `veth_rx` (the veth's other
    /// receive drops), `veth_xmit` (the sender's redirect into the veth failed),
    /// `lane_<cause>`, `policed`, `udp_socket` (kernel: a full socket queue), and
    /// `unaccounted` (offered less received less all of those; in flight at the end
    /// or dropped where nothing counts).
    public var drops: [String: Int64]
    /// CPU seconds over all runs by role: `generator` (gen's process, including the
    /// softirq work its sends trigger when the kernel accounts it to the task),
    /// `dut` (the lanes' or sockets' process), `softirq` (all CPUs, /proc/stat),
    /// `napi_threads` (the dut's NAPI kthreads, threaded mode), and `steal` (time
    /// the hypervisor gave this VM's CPUs to others: high steal makes a point slow).
    public var cpuS: [String: Double]
    /// Received Mpps per core-second of the device's own work (dut + softirq + NAPI
    /// threads): what carries over to a machine where the generator has its own cores.
    public var mppsPerDutCoreSecond: Double
    /// ENA allowance counters' rises over the point's runs (dut and generator); absent off ena.
    public var ec2Shaping: [String: UInt64]? = nil
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
    public var duts: [String]
    public var capGbps: Double?
    public var capDescription: String?
    /// The dut ran in a guest under QEMU's TCG: counts and queues are real, rates are not performance figures.
    public var emulated: Bool? = nil
    /// The signal that ended the sweep early ("SIGINT", "SIGTERM"); absent when it ran to the end.
    public var interrupted: String?
    /// Between two hosts: each side's host, port and the port's facts (driver,
    /// MTU, queues, MAC) as `lanes info` gave them there; absent on the testbed.
    public var sides: [SideFacts]?
    public struct SideFacts: Codable, Sendable {
        public var role: String
        public var host: String
        public var port: String
        public var driver: String
        public var mtu: Int?
        public var rxQueues: Int
        public var mac: String?
        public var xdpFeatures: [String]?
    }
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
        guard c.flows.allSatisfy({ $0 >= 1 && $0 <= 4096 }) else { throw LanesError("bad --flows list", fix: "use counts 1-4096") }
        guard c.repeats >= 1, c.duration > 0, c.warmup >= 0 else { throw LanesError("bad --repeat/--duration/--warmup") }
        if c.sides != nil {
            // The hosts' CPUs and queues are checked in the preflight, over SSH.
            if c.vm { throw LanesError("--vm and --gen-host/--dut-host conflict", fix: "the VM testbed is one machine: give one of them") }
            if c.duts != ["lanes"] { throw LanesError("--dut \(c.duts.joined(separator: ",")) between two hosts: only --dut lanes so far", fix: "use --dut lanes") }
            if c.napi != nil { throw LanesError("--napi is the testbed's veth setting: a host's NIC does its own", fix: "drop --napi") }
            guard c.lanes.allSatisfy({ $0 >= 1 }) else { throw LanesError("bad --lanes list", fix: "use counts of 1 or more") }
            return
        }
        let online = Sysfs.onlineCPUs()
        if let bad = c.lanes.first(where: { $0 < 1 || $0 > online }) {
            throw LanesError("\(bad) lanes: this machine has \(online) online CPUs", fix: "use --lanes within 1-\(online)")
        }
        let tb = Testbed(name: c.testbed)
        try Testbed.validate(name: tb.name)
        if c.vm {
            guard c.size <= 1514 else { throw LanesError("--size \(c.size) with --vm: the VM testbed runs at MTU 1500", fix: "use --size 58-1514") }
            guard c.napi == nil else { throw LanesError("--napi is the veth's setting: the VM's NICs do their own", fix: "drop --napi") }
        }
        if VMTestbed.exists(name: tb.name) {
            throw LanesError("VM testbed '\(tb.name)' exists; a sweep builds and removes its own", fix: "give --testbed a new name, or 'lanes testbed down --name \(tb.name)'")
        }
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
        if let sides = c.sides { return try runBetweenHosts(c, sides, stop: stop, progress: progress) }
        let online = Sysfs.onlineCPUs()
        let tb = Testbed(name: c.testbed)
        var points: [ScalePoint] = []
        var bindMode = "copy"
        let total = c.lanes.count * c.flows.count * c.repeats * c.duts.count
        var done = 0
        let vm = c.vm ? VMTestbed(name: c.testbed) : nil
        defer { if let vm { try? vm.down() } else { try? tb.down() } }
        var accelerator = ""
        /// Runs a command in the guest; throws its stderr when it fails.
        func guest(_ argv: [String]) throws(LanesError) -> String {
            let r = try vm!.exec(argv, timeout: 120)
            guard r.status == 0 else { throw LanesError("'\(argv.joined(separator: " "))' failed in the guest: \(r.stderr.split(separator: "\n").last ?? "")") }
            return r.stdout
        }
        // Rounds go over every point in turn (run r of every point before run r+1),
        // so drift on a shared machine (steal time, a neighbour) lands on all points
        // alike. The "NIC" gets as many queues as lanes, as `ethtool -L` would set.
        var acc: [String: Accumulated] = [:]
        var napiState: (mode: NAPIMode, threads: [Int32])? = nil
        sweep: for r in 0..<c.repeats {
            for l in c.lanes {
                if stop() { break sweep }
                if let vm {
                    // One guest with the most queues; each lane count sets d0's channels, and
                    // the generator plans its flows by the device's RSS as it is then.
                    if accelerator.isEmpty { accelerator = try vm.up(queues: c.lanes.max() ?? 1).accelerator }
                    let info = try guest([Child.lanesBinary, "info", "d0", "--json"])
                    let queuesNow = rxQueues(info)
                    if queuesNow != l { _ = try guest(["ethtool", "-L", "d0", "combined", "\(l)"]) }
                } else if try tb.up(queues: l, mtu: max(1500, c.size - 14)) {
                    // Jumbo frames: every port's MTU takes them (the lanes then bind multi-buffer).
                    napiState = nil
                }
                let coreList = (0..<l).map { $0 % online }
                let queues = Array(0..<l)
                let dutCores = coreList
                for dut in c.duts {
                    let napi = c.napi ?? NAPIMode.default(for: dut)
                    if vm == nil && napiState?.mode != napi { napiState = (napi, try setNAPI(napi, testbed: tb, cores: coreList)) }
                    let napiThreads = napiState?.threads ?? []
                    // The generator's lane for queue q runs on core q: with live frames (gen's
                    // default here) a veth delivers a redirected frame to the peer's queue
                    // `sending CPU % queues`, so the core decides the queue, as RSS would.
                    let genCores = dutCores
                    for f in c.flows {
                        var a = acc["\(dut) \(l) \(f)"] ?? Accumulated(lanes: l, napi: napi)
                            var dutRun: LanesCommand
                            let dutNetns = vm == nil ? tb.dut : nil
                            if dut == "kernel" {
                                dutRun = LanesCommand(.sink, ports: ["d0"], netns: dutNetns)
                                dutRun.extra = ["--kernel", "--port", "9000"]
                            } else {
                                dutRun = LanesCommand(c.mode == "drop" ? .drop : .fwd, ports: ["d0"], netns: dutNetns)
                                dutRun.queues = queues
                                dutRun.filter = "udp dport 9000"
                                if c.mode == "macswap" { dutRun.mode = "macswap" }
                                if let cap = c.capBps { dutRun.extra = ["--flow-cap", LanesCommand.spell(.bps(cap))] }
                            }
                            dutRun.cores = dutCores
                            // A bound in case this process dies without stopping it.
                            dutRun.interval = 0.25
                            dutRun.duration = Double(Int(c.warmup + c.duration + 60))
                            // In the guest, through exec (which passes the SIGINT that ends it on).
                            let child = vm.map { v in (try? Child(arguments: ["testbed", "exec", "dut", "--name", v.name, "--", Child.lanesBinary] + dutRun.arguments)) } ?? (try? Child(dutRun))
                            guard let child else { throw LanesError("could not start the dut at \(l) lanes, \(f) flows") }
                            var waited = 0.0
                            if dut == "lanes" {
                                let attached = { vm.map { $0.guestHasXDP("d0") } ?? xdpAttached(namespace: tb.dut, interface: "d0") }
                                while !attached() && waited < 30 && !stop() { usleep(20_000); waited += vm == nil ? 0.02 : 0.3 }
                            }
                            usleep(dut == "kernel" ? 400_000 : 200_000)
                            if stop() { child.interrupt(); _ = child.wait(timeout: 5); break sweep }
                            if let vm {
                                // The device's RSS as it is now, with the dut's program attached:
                                // virtio_net reconfigures its queues (and RSS) when XDP comes or goes.
                                let now = try guest([Child.lanesBinary, "info", "d0", "--json"])
                                guard FileManager.default.createFile(atPath: vm.sharedHostDir + "/d0.json", contents: Data(now.utf8)) else {
                                    child.interrupt(); _ = child.wait(timeout: 5)
                                    throw LanesError("could not write \(vm.sharedHostDir)/d0.json")
                                }
                            }
                            var genRun = LanesCommand(.gen, testbed: tb.name)
                            genRun.queues = queues; genRun.cores = genCores; genRun.flows = f; genRun.rss = true
                            genRun.rate = c.rate; genRun.duration = c.warmup + c.duration
                            genRun.extra = ["--size", "\(c.size)"]
                            // The kernel receives for itself: the flows go to d0's own address.
                            if dut == "kernel" { genRun.extra += ["--dst-ip", tb.d0.ipv4] }
                            // The guest device's own RSS plans the flows; its tap takes AF_XDP (live frames need a peer program).
                            if let vm { genRun.extra += ["--rss-table", vm.sharedHostDir + "/d0.json", "--tx", "xsk"] }
                            let before = Counters.read(testbed: tb, napiThreads: napiThreads)
                            let gen = try Child.run(genRun, stop: stop)
                            let after = Counters.read(testbed: tb, napiThreads: napiThreads)
                            child.interrupt()
                            let d = child.wait()
                            if stop() { break sweep } // this point's runs are incomplete: not reported
                            guard gen.status == 0 else { throw LanesError("generator failed at \(l) lanes, \(f) flows: \(gen.stderr.split(separator: "\n").last ?? "")") }
                            guard d.status == 0 else { throw LanesError("\(dut == "kernel" ? "the kernel receiver" : "lanes " + c.mode) failed at \(l) lanes, \(f) flows: \(d.stderr.split(separator: "\n").last ?? "")") }
                            let m = try measure(dut: d.stdout, gen: gen.stdout, warmup: c.warmup, duration: c.duration)
                            a.runs.append(m.mpps)
                            a.offered.append(m.offeredMpps)
                            for (i, v) in m.perQueue.enumerated() where i < l { a.perQueue[i] += v }
                            a.policed += m.policed
                            bindMode = dut == "lanes" ? m.bindMode : bindMode
                            a.offeredPackets += m.offeredPackets
                            a.receivedPackets += m.receivedPackets
                            var runDrops = m.drops
                            // The veth counts a failed redirect into a lane's socket and the
                            // policer's XDP_DROP among its receive drops: those have their own places.
                            let veth = Int64(after.vethRxDrops) - Int64(before.vethRxDrops) - (m.drops["xsk_fill_ring_empty"] ?? 0) - (m.drops["policed"] ?? 0)
                            if veth > 0 { runDrops["veth_rx"] = veth }
                            let xmit = Int64(after.vethXmitErrors) - Int64(before.vethXmitErrors)
                            if xmit > 0 { runDrops["veth_xmit"] = xmit }
                            let tap = Int64(after.tapTxDrops) - Int64(before.tapTxDrops)
                            if tap > 0 { runDrops["tap_tx"] = tap }
                            let explained = runDrops.values.reduce(0, +)
                            runDrops["unaccounted"] = Int64(m.offeredPackets) - Int64(m.receivedPackets) - explained
                            for (k, v) in runDrops { a.drops[k, default: 0] += v }
                            let softirq = after.softirqS - before.softirqS, threads = after.napiS - before.napiS
                            a.cpu["steal", default: 0] += after.stealS - before.stealS
                            a.cpu["generator", default: 0] += m.genCPU
                            a.cpu["dut", default: 0] += m.dutCPU
                            a.cpu["softirq", default: 0] += softirq
                            if napi == .threaded { a.cpu["napi_threads", default: 0] += threads }
                            a.perCore.append(Double(m.receivedPackets) / 1e6 / max(m.dutCPU + softirq + threads, 1e-9))
                            if let sh = m.shaping { for (k, v) in sh { a.shaping[k, default: 0] += v } }
                            done += 1
                            progress("[\(done)/\(total)] \(dut) lanes \(l) flows \(f) run \(r + 1): \(fmt(m.mpps)) Mpps received, \(fmt(m.offeredMpps)) Mpps offered")
                        acc["\(dut) \(l) \(f)"] = a
                    }
                }
            }
        }
        points = ScaleRunner.points(acc, c)
        var result = ScaleRunner.result(c, points: points, driver: vm == nil ? "veth" : "virtio_net in a QEMU guest (\(accelerator)\(accelerator == "tcg" ? ": emulated, not performance figures" : ""))",
                                        bindMode: bindMode)
        if vm != nil { result.emulated = accelerator == "tcg" }
        return result
    }

    /// The points in table order, from each point's runs (an interrupted sweep
    /// reports the points it finished).
    static func points(_ acc: [String: Accumulated], _ c: ScaleConfig) -> [ScalePoint] {
        var points: [ScalePoint] = []
        for l in c.lanes {
            for dut in c.duts {
                for f in c.flows {
                    guard let a = acc["\(dut) \(l) \(f)"], !a.runs.isEmpty else { continue }
                    let totalPkts = a.perQueue.reduce(0, +)
                    let used = a.perQueue.filter { totalPkts > 0 && Double($0) > 0.01 * Double(totalPkts) }.count
                    // The kernel's sockets share flows by SO_REUSEPORT's hash, not by queue: no plan to match.
                    let expected = dut == "kernel" ? used : min(f, l)
                    let med = median(a.runs)
                    let generatorBound = med >= 0.95 * median(a.offered) && c.capBps == nil
                    points.append(ScalePoint(lanes: l, flows: f, dut: dut, napi: c.vm ? "guest" : c.sides != nil ? "device" : a.napi.rawValue, mode: dut == "kernel" ? "udp sockets" : c.mode,
                                             mppsMedian: med, mppsMin: a.runs.min() ?? 0, mppsMax: a.runs.max() ?? 0,
                                             gbpsMedian: med * 1e6 * Double(c.size) * 8 / 1e9, offeredMppsMedian: median(a.offered),
                                             queuesUsed: used, queuesExpected: expected, perQueuePackets: a.perQueue, policedPackets: a.policed,
                                             generatorBound: generatorBound, bound: a.policed > 0 ? "policer" : generatorBound ? "generator" : "device",
                                             planMatched: used == expected, runs: a.runs, offeredPackets: a.offeredPackets, receivedPackets: a.receivedPackets,
                                             drops: a.drops, cpuS: a.cpu, mppsPerDutCoreSecond: median(a.perCore),
                                             ec2Shaping: a.shaping.isEmpty ? nil : a.shaping))
                }
            }
        }
        return points
    }

    /// The sweep's result around its points: this machine's facts and the run's settings.
    static func result(_ c: ScaleConfig, points: [ScalePoint], driver: String, bindMode: String) -> ScaleResult {
        let uname = (try? Shell.run(["uname", "-r"]))?.stdout.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
        let cpu = (Sysfs.read("/proc/cpuinfo") ?? "").split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { String($0.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces) } ?? "?"
        let date = ISO8601DateFormatter().string(from: Date())
        return ScaleResult(date: date, machine: .init(cpuModel: cpu, cores: Sysfs.onlineCPUs(), kernel: uname, driver: driver,
                                                      bindMode: bindMode, hostname: ProcessInfo.processInfo.hostName),
                           mode: c.mode, frameSize: c.size, durationS: c.duration, warmupS: c.warmup, repeats: c.repeats, duts: c.duts,
                           capGbps: c.capBps.map { $0 / 1e9 }, capDescription: c.capDescription, points: points)
    }

    /// One point's runs so far.
    struct Accumulated {
        var lanes: Int, napi: NAPIMode
        var runs: [Double] = [], offered: [Double] = [], perCore: [Double] = []
        var shaping: [String: UInt64] = [:]
        var perQueue: [UInt64]
        var policed: UInt64 = 0, offeredPackets: UInt64 = 0, receivedPackets: UInt64 = 0
        var drops: [String: Int64] = [:], cpu: [String: Double] = [:]
        init(lanes: Int, napi: NAPIMode) { self.lanes = lanes; self.napi = napi; perQueue = Array(repeating: 0, count: lanes) }
    }

    struct Measurement {
        var mpps: Double; var offeredMpps: Double; var perQueue: [UInt64]; var policed: UInt64; var bindMode: String
        var offeredPackets: UInt64; var receivedPackets: UInt64; var drops: [String: Int64]; var genCPU: Double; var dutCPU: Double
        /// ENA allowance counters' rises on the dut and the generator (nil off ena, as on the testbed's veths).
        var shaping: [String: UInt64]? = nil
    }

    /// Received rate from the dut's interval lines inside the measured window;
    /// per-queue (or per-socket) packets, drops by cause and CPU from its summary.
    static func measure(dut: String, gen: String, warmup: Double, duration: Double) throws(LanesError) -> Measurement {
        guard let summary = Report.last(dut), summary.lanes != nil else { throw LanesError("no report from the dut") }
        let intervals = IntervalLine.lines(dut).compactMap { l -> (Double, Double)? in l.rxPps.map { (l.elapsedS, $0) } }
        // Traffic starts when the first interval sees packets; skip the warm-up after it, and the last (partial) interval.
        let active = intervals.drop { $0.1 == 0 }
        var window: [Double] = []
        if let t0 = active.first?.0 {
            window = active.filter { $0.0 >= t0 + warmup && $0.0 <= t0 + warmup + duration }.map(\.1)
            if window.isEmpty { window = active.map(\.1) }
        }
        let mpps = window.isEmpty ? 0 : window.reduce(0, +) / Double(window.count) / 1e6
        let perQueue = (summary.lanes ?? []).map { $0.rxPackets ?? 0 }
        let policed = summary.xdp?.policed ?? 0
        var drops: [String: Int64] = [:]
        if let x = summary.xsk?.rxDropped, x > 0 { drops["xsk_fill_ring_empty"] = Int64(x) }
        for (k, v) in summary.drops ?? [:] where k != "drop_app" && v > 0 { drops["lane_" + k.dropFirst(5)] = Int64(v) }
        if policed > 0 { drops["policed"] = Int64(policed) }
        if let u = summary.udpRcvbufErrors, u > 0 { drops["udp_socket"] = Int64(u) }
        // What arrived: the lanes' count (drop: received, then dropped by the app), or the kernel sink's.
        let received = (summary.rxPackets ?? 0) + (summary.packets ?? 0)
        let g = Report.last(gen)
        return Measurement(mpps: mpps, offeredMpps: (g?.txPps ?? 0) / 1e6, perQueue: perQueue, policed: policed, bindMode: summary.bindMode ?? "?",
                           offeredPackets: g?.txPackets ?? 0, receivedPackets: received, drops: drops,
                           genCPU: g?.cpuS ?? 0, dutCPU: summary.cpuS ?? 0,
                           shaping: shapingDeltas([summary, g].compactMap { $0 }))
    }

    /// The RX queues `lanes info --json` reports.
    static func rxQueues(_ infoJSON: String) -> Int? {
        struct Info: Decodable { var rxQueues: Int }
        return (try? Report.decoder.decode(Info.self, from: Data(infoJSON.utf8)))?.rxQueues
    }

    /// The `ec2_shaping` deltas of the dut's and the generator's summaries, summed; nil when neither has them.
    static func shapingDeltas(_ summaries: [Report]) -> [String: UInt64]? {
        let all = summaries.compactMap { $0.ec2Shaping?.deltas }
        guard !all.isEmpty else { return nil }
        var out: [String: UInt64] = [:]
        for d in all { for (k, v) in d { out[k, default: 0] += v } }
        return out
    }

    /// Counters read around each run: the dut veth's receive drops and the sender's
    /// redirect errors (ethtool -S), softirq time over all CPUs, NAPI kthreads' CPU.
    struct Counters {
        var vethRxDrops: UInt64 = 0, vethXmitErrors: UInt64 = 0, softirqS = 0.0, napiS = 0.0, stealS = 0.0
        /// The VM testbed: frames the host's tap dropped because the guest did not take them in time.
        var tapTxDrops: UInt64 = 0

        static func read(testbed tb: Testbed, napiThreads: [Int32]) -> Counters {
            var c = Counters()
            func sum(_ ns: String, _ iface: String, _ match: (Substring) -> Bool) -> UInt64 {
                let out = (try? Shell.run(["ip", "netns", "exec", ns, "ethtool", "-S", iface], check: false))?.stdout ?? ""
                return out.split(separator: "\n").reduce(0) { acc, line in
                    let parts = line.split(separator: ":")
                    guard parts.count == 2, match(parts[0].trimmingCharacters(in: .whitespaces)[...]) else { return acc }
                    return acc + (UInt64(parts[1].trimmingCharacters(in: .whitespaces)) ?? 0)
                }
            }
            c.vethRxDrops = sum(tb.dut, "d0") { $0.hasPrefix("rx_queue_") && $0.hasSuffix("_drops") }
            c.vethXmitErrors = sum(tb.gen, "g0") { $0.hasSuffix("xdp_xmit_errors") }
            if VMTestbed.exists(name: tb.name) { c.tapTxDrops = VMTestbed(name: tb.name).tapTxDropped("g0") }
            let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
            if let cpu = Sysfs.read("/proc/stat")?.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) {
                let f = cpu.split(separator: " ")
                if f.count > 7 { c.softirqS = (Double(f[7]) ?? 0) / ticks }
                if f.count > 8 { c.stealS = (Double(f[8]) ?? 0) / ticks }
            }
            for pid in napiThreads {
                let f = (Sysfs.read("/proc/\(pid)/stat") ?? "").split(separator: ")").last?.split(separator: " ") ?? []
                if f.count > 13 { c.napiS += ((Double(f[11]) ?? 0) + (Double(f[12]) ?? 0)) / ticks }
            }
            return c
        }
    }

    /// Sets the dut veth's NAPI mode; threaded, pins queue q's kthread to lane q's
    /// core and returns the kthreads' pids (queue order).
    static func setNAPI(_ mode: NAPIMode, testbed tb: Testbed, cores: [Int]) throws(LanesError) -> [Int32] {
        func write(_ v: Int) throws(LanesError) {
            try Shell.run(["ip", "netns", "exec", tb.dut, "sh", "-c", "echo \(v) > /sys/class/net/d0/threaded"])
        }
        // The kthreads are napi/d0-<napi id>, ids rising with the queue index. This
        // testbed's are the ones that appear when its d0 turns threaded.
        func kthreads() -> [(Int, Int32)] {
            ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
                guard let pid = Int32(entry), let comm = Sysfs.read("/proc/\(pid)/comm")?.trimmingCharacters(in: .whitespacesAndNewlines),
                      comm.hasPrefix("napi/d0-"), let id = Int(comm.dropFirst(8)) else { return nil }
                return (id, pid)
            }
        }
        try write(0)
        guard mode == .threaded else { return [] }
        let before = Set(kthreads().map(\.1))
        try write(1)
        var pids: [(Int, Int32)] = []
        for _ in 0..<50 {
            pids = kthreads().filter { !before.contains($0.1) }
            if pids.count >= cores.count { break }
            usleep(20_000)
        }
        let sorted = pids.sorted { $0.0 < $1.0 }.map(\.1)
        guard sorted.count >= cores.count else {
            throw LanesError("threaded NAPI: found \(sorted.count) NAPI kthreads for d0, expected \(cores.count)", fix: "use --napi softirq")
        }
        for (q, pid) in sorted.enumerated() {
            try Shell.run(["taskset", "-pc", "\(cores[q % cores.count])", "\(pid)"])
        }
        return sorted
    }

    static func fmt(_ v: Double) -> String { String(format: "%.3f", v) }

    /// The Markdown table.
    public static func table(_ r: ScaleResult) -> String {
        var s = r.emulated == true ? "EMULATED: the dut ran in a QEMU guest under TCG; its counts and queues are real, its rates are not performance figures.\n\n" : ""
        s += "| dut | lanes | flows | Mpps median | min | max | Gbps | offered Mpps | bound | Mpps per dut core-s | CPU s gen/dut/softirq/napi | drops (where) | queues used | notes |\n"
        s += "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---|---:|---|\n"
        for p in r.points {
            var notes: [String] = []
            if !p.planMatched { notes.append("expected \(p.queuesExpected) queues") }
            if p.policedPackets > 0 { notes.append("policed \(p.policedPackets)") }
            if r.capGbps != nil && p.dut == "kernel" { notes.append("no cap: the policer is Lanes' XDP program") }
            for (k, v) in (p.ec2Shaping ?? [:]).sorted(by: { $0.key < $1.key }) where v > 0 { notes.append("EC2 shaped: \(k) +\(v)") }
            let cpu = ["generator", "dut", "softirq", "napi_threads"].map { p.cpuS[$0].map { String(format: "%.2f", $0) } ?? "-" }.joined(separator: "/")
            let drops = p.drops.filter { $0.value != 0 }.sorted { $0.value > $1.value }.prefix(3).map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            s += "| \(p.dut) (\(p.napi)) | \(p.lanes) | \(p.flows) | \(fmt(p.mppsMedian)) | \(fmt(p.mppsMin)) | \(fmt(p.mppsMax)) | \(fmt(p.gbpsMedian)) | \(fmt(p.offeredMppsMedian)) | \(p.bound) | \(fmt(p.mppsPerDutCoreSecond)) | \(cpu) | \(drops) | \(p.queuesUsed)/\(p.lanes) | \(notes.joined(separator: ", ")) |\n"
        }
        if let cap = r.capGbps { s += "\nPer-flow cap: \(fmt(cap * 1000)) Mbps (\(r.capDescription ?? "")) = \(fmt(cap * 1e9 / Double(r.frameSize * 8) / 1e6)) Mpps of \(r.frameSize)-byte frames.\n" }
        return s
    }

    /// A paragraph reading the result: per dut, the single-flow ceiling, the best
    /// multi-flow figure, their ratio, and what bounded each.
    public static func reading(_ r: ScaleResult) -> String {
        var out: [String] = []
        for dut in r.duts {
            let pts = r.points.filter { $0.dut == dut }
            let minLanes = pts.map(\.lanes).min() ?? 1, maxLanes = pts.map(\.lanes).max() ?? 1
            guard let one = pts.first(where: { $0.flows == 1 && $0.lanes == minLanes }),
                  let many = pts.filter({ $0.flows > 1 }).max(by: { $0.mppsMedian < $1.mppsMedian }) else { continue }
            let oneWide = pts.first { $0.flows == 1 && $0.lanes == maxLanes }
            var t = "\(dut == "kernel" ? "The kernel stack" : "Lanes"): one flow gets \(fmt(one.mppsMedian)) Mpps on \(minLanes) lane\(minLanes == 1 ? "" : "s") (\(one.bound)-bound)"
            if let w = oneWide, maxLanes > minLanes { t += " and \(fmt(w.mppsMedian)) Mpps on \(maxLanes), since RSS keeps one flow on one queue and so on one core" }
            t += "; \(many.flows) flows over \(many.lanes) lanes reach \(fmt(many.mppsMedian)) Mpps (\(many.bound)-bound)"
                + (one.mppsMedian > 0 ? ", \(String(format: "%.2f", many.mppsMedian / one.mppsMedian))x." : ", where one flow measured none.")
            t += " Per core-second of the device's own work: \(fmt(one.mppsPerDutCoreSecond)) Mpps for one flow, \(fmt(many.mppsPerDutCoreSecond)) for \(many.flows)."
            if let top = many.drops.filter({ $0.value > 0 && $0.key != "unaccounted" }).max(by: { $0.value < $1.value }) {
                t += " What the device could not take was dropped mostly at \(top.key)."
            }
            if r.capGbps != nil { t += " With the per-flow cap, one flow is held at the cap and only many flows pass it." }
            out.append(t)
        }
        return out.joined(separator: "\n")
    }
}
