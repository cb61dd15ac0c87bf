import ArgumentParser
import Foundation
import LanesCore
import LanesEngine
import LanesLab
import LanesPacket
import LanesXDP

extension EC2Preset: ExpressibleByArgument {}
extension NAPIMode: ExpressibleByArgument {}

struct ScaleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scale",
        abstract: "Single-flow versus multi-flow scaling over lanes: table, JSON and SVG (the main job).",
        discussion: """
        On the built-in testbed (created for the run and removed after), for each lane count
        the dut's veth gets that many queues (as 'ethtool -L' would), 'lanes gen' sends F flows
        planned with the RSS hash so they spread over the queues as a NIC would spread them,
        and 'lanes drop' (or fwd --mode macswap) on the dut counts what arrives per lane.
        --flow-cap or --ec2 adds an XDP per-flow policer on the dut's ingress (a token bucket
        per 5-tuple) that emulates EC2's per-flow ceiling: 5 Gbps (default), 10 Gbps
        (placement-group), 25 Gbps (ena-express), scaled by --cap-scale to what veth carries.
        Between two hosts (the generator on one, the dut on another, as on EC2), each side's
        lanes runs on its host over the user's OpenSSH: --gen-host/--gen-port and
        --dut-host/--dut-port ('local' names this machine). Both hosts must run this same build
        (checked first, with each port's facts); each lane count sets both ports' channels with
        'ethtool -L' (put back at the end); the generator plans its flows by the dut port's RSS.
        Examples: lanes scale --lanes 1,2 --flows 1,4,16,64 --ec2 default --out results
          lanes scale --gen-host ec2-user@10.0.0.5 --gen-port ens5 --dut-host ec2-user@10.0.0.6 --dut-port ens5 --lanes 1,2,4
        """)
    @Option(help: "Lane counts, e.g. 1,2,4 (default: 1 up to the online CPUs).") var lanes: String?
    @Option(help: "Flow counts.") var flows = "1,2,4,8,16,32,64"
    @Option(help: "What the dut does: drop or macswap.") var mode = "drop"
    @Option(help: "Runs per point (median, min, max reported).") var `repeat` = 3
    @Option(help: "Seconds measured per run.") var duration = 1.0
    @Option(help: "Seconds of warm-up before measuring.") var warmup = 0.5
    @Option(help: "Frame size in bytes, 58-9015 (jumbo frames: 9014 at MTU 9000, reported in Gbps as well).") var size = 64
    @Option(help: "Offered rate per point (default: as fast as the generator goes).") var rate: String?
    @Option(help: "Per-flow cap before scaling, e.g. 5Gbps.") var flowCap: String?
    @Option(help: "EC2 preset for the per-flow cap: default, placement-group, ena-express.") var ec2: EC2Preset?
    @Option(help: "Scale factor applied to the cap (veth carries far less than ENA).") var capScale = 0.01
    @Option(help: "Directory for results.json, table.md and plot.svg.") var out: String?
    @Option(help: "Testbed name for the run.") var testbed = "lanes-scale"
    @Flag(help: "On the VM testbed: the dut is a QEMU guest's virtio_net (KVM, else TCG, where the figures are marked emulated); flows planned by the guest device's own RSS.") var vm = false
    @Flag(help: "Print the JSON on stdout instead of the table.") var json = false
    @Option(help: "Device under test: lanes (XDP + AF_XDP lanes), kernel (one UDP socket per core: SO_REUSEPORT, recvmmsg, pinned), or both.") var dut = "lanes"
    @Option(help: "Between two hosts: the generator's host, [USER@]HOST[:PORT] over ssh (BatchMode: keys or an agent), or 'local'.") var genHost: String?
    @Option(help: "Between two hosts: the generator's port on its host.") var genPort: String?
    @Option(help: "Between two hosts: the dut's host, [USER@]HOST[:PORT] or 'local'.") var dutHost: String?
    @Option(help: "Between two hosts: the dut's port on its host.") var dutPort: String?
    @Option(help: "Between two hosts: the flows' source address or range (default 198.18.0.1; inside 198.18.0.0/15).") var genIp: String?
    @Option(help: "Between two hosts: the flows' destination address or range (default 198.18.1.1; inside 198.18.0.0/15).") var dutIp: String?
    @Option(help: "Between two hosts: the MAC the frames go to (default: the dut port's, learnt on its host).") var dutMac: String?
    @Option(help: "Between two hosts: an ssh config file (ssh -F; default: the user's own ssh config and agent).") var sshConfig: String?
    @Option(help: "Between two hosts: the path of lanes on the hosts (default: this binary's path; both must run this same build).") var remoteLanes: String?
    @Option(help: "Where the dut veth's receive work runs: softirq (in the sender's softirq) or threaded (a NAPI kthread per queue pinned to its lane's core). Default: softirq for lanes, threaded for kernel (measured; see the README).") var napi: NAPIMode?

    func run() throws {
        var c = ScaleConfig()
        let online = Sysfs.onlineCPUs()
        if let lanes {
            guard let l = IndexList.parse(lanes), !l.isEmpty else { throw LanesError("bad --lanes '\(lanes)'", fix: "use e.g. 1,2,4") }
            c.lanes = l
        } else {
            c.lanes = Array(1...online)
        }
        guard let f = FrameSizes.parseList(flows, minimum: 1, maximum: 4096) else { throw LanesError("bad --flows '\(flows)'", fix: "use e.g. 1,2,4,8") }
        c.flows = f
        c.mode = mode
        c.repeats = `repeat`
        c.duration = duration
        c.warmup = warmup
        // Up to 9014 (an MTU of 9000; EC2's 9001 is one byte more): the testbed takes
        // the MTU the frames need, and the lanes bind AF_XDP multi-buffer above one frame.
        guard size >= 58 && size <= 9015 else { throw LanesError("bad --size \(size)", fix: "use 58-9015 (9014: jumbo frames at MTU 9000)") }
        c.size = size
        if let rate { guard Rate.parse(rate) != nil else { throw LanesError("bad --rate '\(rate)'", fix: "use e.g. 500kpps or 1Gbps") } }
        c.rate = rate.flatMap(Rate.parse)
        c.testbed = testbed
        c.vm = vm
        switch dut {
        case "lanes", "kernel": c.duts = [dut]
        case "both": c.duts = ["lanes", "kernel"]
        default: throw LanesError("bad --dut '\(dut)'", fix: "use lanes, kernel or both")
        }
        if dut != "lanes" && mode != "drop" { throw LanesError("--dut \(dut) and --mode \(mode) conflict", fix: "the kernel receiver only receives: use --mode drop") }
        c.napi = napi
        guard capScale > 0 && capScale <= 1 else { throw LanesError("bad --cap-scale \(capScale)", fix: "use a factor in (0, 1]") }
        if flowCap != nil && ec2 != nil { throw LanesError("--flow-cap and --ec2 conflict", fix: "--ec2 sets the per-flow cap; give one of them") }
        if let flowCap {
            guard case .bps(let b)? = Rate.parse(flowCap) else { throw LanesError("bad --flow-cap '\(flowCap)'", fix: "give bits per second, e.g. 5Gbps") }
            c.capBps = b * capScale
            c.capDescription = "\(flowCap) x \(capScale)"
        } else if let ec2 {
            c.capBps = ec2.perFlowBps * capScale
            c.capDescription = "EC2 \(ec2.rawValue): \(ec2.perFlowBps / 1e9) Gbps per flow x \(capScale)"
        }
        if genHost != nil || dutHost != nil || genPort != nil || dutPort != nil {
            guard let genPort, let dutPort else {
                throw LanesError("between two hosts both ports are needed", fix: "give --gen-port and --dut-port (with --gen-host and/or --dut-host)")
            }
            if let sshConfig, !FileManager.default.isReadableFile(atPath: sshConfig) {
                throw LanesError("cannot read --ssh-config '\(sshConfig)'", fix: "give an ssh config file")
            }
            c.sides = SweepSides(gen: (try HostSpec(parsing: genHost ?? "local"), genPort), dut: (try HostSpec(parsing: dutHost ?? "local"), dutPort),
                                 access: SSHAccess(configFile: sshConfig, lanesPath: remoteLanes))
            (c.sides!.genIP, c.sides!.dutIP, c.sides!.dutMAC) = (genIp, dutIp, dutMac)
            if let dutMac, MACAddress(dutMac) == nil { throw LanesError("bad --dut-mac '\(dutMac)'", fix: "six hex bytes like 02:4c:00:00:00:02") }
            if lanes == nil { c.lanes = [1, 2] }
        } else if genIp != nil || dutIp != nil || dutMac != nil {
            throw LanesError("--gen-ip, --dut-ip and --dut-mac are for a sweep between two hosts", fix: "add --gen-host/--gen-port and --dut-host/--dut-port, or drop them")
        }
        let dir = try out.map(Experiment.outputDirectory)
        try ScaleRunner.check(c)
        // SIGINT/SIGTERM end the sweep between measurements: children stop, the
        // testbed goes, and the points finished so far are printed and written.
        let latch = Experiment.StopLatch()
        let t0 = Date()
        var result = try ScaleRunner.run(c, stop: latch.poll) { line in
            FileHandle.standardError.write(Data((line + "\n").utf8))
        }
        result.interrupted = latch.name
        let data = try Experiment.json(result)
        let table = ScaleRunner.table(result)
        if let dir {
            try Experiment.write([("results.json", data), ("table.md", Data(table.utf8)), ("plot.svg", Data(ScalePlot.svg(result).utf8))], to: dir)
        }
        if json {
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(table)
            print(ScaleRunner.reading(result))
            if let out { print("results: \(out)/results.json, \(out)/table.md, plot: \(out)/plot.svg") }
            print("sweep took \(Int(Date().timeIntervalSince(t0))) s")
        }
        if let why = result.interrupted {
            printError("lanes: error: scale interrupted by \(why) after \(result.points.count) of \(c.lanes.count * c.flows.count * c.duts.count) points (those are printed\(out == nil ? "" : " and written"))\n")
            throw ExitCode(128 + latch.signal)
        }
    }
}
