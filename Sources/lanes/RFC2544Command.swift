import ArgumentParser
import Foundation
import LanesCore
import LanesEngine
import LanesLab
import LanesXDP

/// `lanes rfc2544`: NDR and PDR per frame size and flow count, with latency at
/// fractions of NDR, on a testbed of its own.
struct RFC2544Command: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rfc2544",
        abstract: "RFC 2544 throughput (NDR/PDR), latency, frame loss rate and back-to-back bursts for a device under test.",
        discussion: """
        By default traffic goes gen:g0 -> dut -> sink:s0 on a testbed of its own (created and
        removed); the receiver counts signed frames in XDP. --dut lanes runs 'lanes fwd --mode
        l3' on the dut, --dut kernel forwards with Linux IP forwarding, --dut none receives on
        dut:d0 itself (the plain veth, to calibrate the generator and receiver), --dut external
        sends from --tx-port to the device at --dst-mac and counts at --rx-port, setting nothing
        up. Every test starts with an unpaced trial: the generator's maximum bounds the search
        (a device that loses nothing there is 'at least' that, generator-bound). Throughput
        bisects to --precision and verifies the result with a --verify-duration trial, then
        shows 1.1x NDR loses; latency is measured at --latency-at fractions of NDR; frame loss
        steps down from the maximum by --loss-step; back-to-back finds the longest lossless
        burst at the maximum. Every trial is in the JSON; --out also writes report.md and plot.svg.
        Examples:
          lanes rfc2544 --dut kernel --sizes 64,1518,imix --flows 1,64 --out results/rfc2544
          lanes rfc2544 --dut external --tx-port eth1 --rx-port eth2 --dst-mac 0c:42:a1:00:00:01
        """)
    @Option(help: "Device under test: lanes (lanes fwd --mode l3), kernel (Linux IP forwarding), none (plain veth, calibration) or external.") var dut = "lanes"
    @Option(help: "Frame sizes in bytes (64-9014: jumbo frames run at the MTU they need), and imix (7:4:1 of 64/570/1518).") var sizes = "64,1518"
    @Option(help: "Flow counts: 1 and many side by side.") var flows = "1,64"
    @Option(help: "Tests: throughput, latency, loss, back-to-back, or all.") var tests = "all"
    @Option(help: "Seconds per search trial.") var trialDuration = 2.0
    @Option(help: "Seconds of the verification trial at the result (and of the trial at 1.1x NDR).") var verifyDuration = 5.0
    @Option(help: "Width of the final bracket, relative to its top (e.g. 0.5%); also the back-to-back search's.") var precision = "0.5%"
    @Option(help: "Loss ratio of the partial drop rate (e.g. 0.5%, FD.io CSIT's).") var pdr = "0.5%"
    @Option(help: "Latency at these fractions of NDR.") var latencyAt = "0.1,0.5,0.9,1"
    @Option(help: "Frame loss rate: offered load steps down from 100% of the maximum by this much.") var lossStep = "10%"
    @Option(help: "Back-to-back: the longest burst tried, in seconds at the generator's maximum.") var b2bDuration = 2.0
    @Option(help: "Back-to-back: searches to average.") var b2bSearches = 2
    @Option(help: "Testbed name for the run.") var testbed = "lanes-2544"
    @Flag(help: "On the VM testbed: the dut (--dut lanes or kernel) forwards d0 (virtio_net) -> d1 (igb) in a QEMU guest; TCG figures are marked emulated.") var vm = false
    @Option(help: "--dut external: the port frames leave from.") var txPort: String?
    @Option(help: "--dut external, or between hosts: the port frames come back on (between hosts, on --rx-host).") var rxPort: String?
    @Option(help: "--dut external: the transmit port's network namespace (default: this one).") var txNetns: String?
    @Option(help: "--dut external: the receive port's network namespace (default: this one).") var rxNetns: String?
    @Option(help: "--dut external: destination MAC, the device's port that --tx-port reaches.") var dstMac: String?
    @Option(help: "Between hosts: the generator's host, [USER@]HOST[:PORT] over ssh (BatchMode), or 'local'.") var genHost: String?
    @Option(help: "Between hosts: the port frames leave from, on the generator's host.") var genPort: String?
    @Option(help: "Between hosts: the receiving side's host (default: the generator's).") var rxHost: String?
    @Option(help: "Between hosts, --dut lanes or kernel: the dut's host.") var dutHost: String?
    @Option(help: "Between hosts, --dut lanes or kernel: the dut's ports IN,OUT (frames go to IN's MAC; lanes fwd forwards IN -> OUT by that host's routes).") var dutPort: String?
    @Option(help: "Between hosts: the flows' source address or range (default 198.18.0.1; inside 198.18.0.0/15).") var genIp: String?
    @Option(help: "Between hosts: the flows' destination, routed by the dut to --rx-port (default 198.18.1.1; inside 198.18.0.0/15).") var dstIp: String?
    @Option(help: "Between hosts: an ssh config file (ssh -F; default: the user's own).") var sshConfig: String?
    @Option(help: "Between hosts: the path of lanes on the hosts (default: this binary's; the same build).") var remoteLanes: String?
    @Option(help: "Directory for results.json, report.md and plot.svg.") var out: String?
    @Flag(help: "Print the JSON on stdout instead of the report.") var json = false
    @Option(help: ArgumentHelp("Check the method against a known-bad device: the dut is 'lanes fwd --mode io --impair SPEC' (e.g. drop=100: 1% lost).", valueName: "drop=N,reorder=M")) var impair: String?

    @Option(help: "--dut lanes: where it forwards, as 'lanes fwd --path': xsk (the lanes, the default), xdp (in the XDP program) or auto.") var dutPath = "xsk"
    @Option(help: "--dut lanes: its routes, 'kernel' (the kernel's FIB, looked up per packet in XDP: the default) or a route file (lines 'PREFIX/LEN NEXTHOP-MAC'), as 'lanes fwd --routes'.") var dutRoutes: String?

    static func fraction(_ s: String, _ flag: String) throws(LanesError) -> Double {
        let t = s.hasSuffix("%") ? String(s.dropLast()) : s
        guard let v = Double(t) else { throw LanesError("bad --\(flag) '\(s)'", fix: "give a fraction like 0.005 or 0.5%") }
        return s.hasSuffix("%") ? v / 100 : v
    }

    func run() throws {
        var c = RFC2544Config()
        c.dut = dut
        guard let s = RFC2544Frame.parseList(sizes) else { throw LanesError("bad --sizes '\(sizes)'", fix: "give frame sizes 64-9014 or imix, e.g. 64,1518,imix") }
        c.sizes = s
        guard let f = FrameSizes.parseList(flows, minimum: 1, maximum: 4096) else { throw LanesError("bad --flows '\(flows)'", fix: "give flow counts, e.g. 1,64") }
        c.flows = f
        guard let t = RFC2544Test.parseList(tests) else { throw LanesError("bad --tests '\(tests)'", fix: "name throughput, latency, loss, back-to-back (comma-separated) or all") }
        c.tests = t
        c.trialSeconds = trialDuration
        c.verifySeconds = verifyDuration
        c.precision = try Self.fraction(precision, "precision")
        c.pdr = try Self.fraction(pdr, "pdr")
        c.lossStep = try Self.fraction(lossStep, "loss-step")
        c.b2bSeconds = b2bDuration
        c.b2bSearches = b2bSearches
        let loads = latencyAt.split(separator: ",").map { Double($0) }
        guard !loads.isEmpty, loads.allSatisfy({ $0 != nil && $0! > 0 && $0! <= 1 }) else { throw LanesError("bad --latency-at '\(latencyAt)'", fix: "give fractions of NDR in (0, 1], e.g. 0.5,0.9") }
        c.latencyAt = loads.map { $0! }
        c.testbed = testbed
        c.vm = vm
        (c.txPort, c.rxPort, c.txNetns, c.rxNetns, c.dstMac) = (txPort, rxPort, txNetns, rxNetns, dstMac)
        if genHost != nil || genPort != nil || rxHost != nil || dutHost != nil || dutPort != nil {
            // Between hosts --rx-port is the receiving host's port.
            guard let genPort, let rxPort else {
                throw LanesError("between hosts the generator's and the receiving ports are needed", fix: "give --gen-port and --rx-port (with --gen-host/--rx-host)")
            }
            c.rxPort = nil
            if let sshConfig, !FileManager.default.isReadableFile(atPath: sshConfig) {
                throw LanesError("cannot read --ssh-config '\(sshConfig)'", fix: "give an ssh config file")
            }
            let gen = try HostSpec(parsing: genHost ?? "local")
            let dutPorts = dutPort.map { $0.split(separator: ",").map(String.init) }
            if let d = dutPorts, d.count != 2 { throw LanesError("bad --dut-port '\(dutPort!)'", fix: "give the dut's IN,OUT ports, e.g. ens5,ens6") }
            c.hosts = RFC2544Hosts(gen: (gen, genPort), rx: (try rxHost.map { try HostSpec(parsing: $0) } ?? gen, rxPort),
                                   dut: try dutPorts.map { (try HostSpec(parsing: dutHost ?? "local"), $0) },
                                   access: SSHAccess(configFile: sshConfig, lanesPath: remoteLanes))
            (c.hosts!.genIP, c.hosts!.dstIP) = (genIp, dstIp)
        } else if genIp != nil || dstIp != nil {
            throw LanesError("--gen-ip and --dst-ip are for a run between hosts", fix: "add --gen-host/--gen-port and --rx-port, or drop them")
        }
        if let dutRoutes {
            guard dut == "lanes", impair == nil else { throw LanesError("--dut-routes needs --dut lanes (and no --impair)") }
            guard dutRoutes == "kernel" || FileManager.default.isReadableFile(atPath: dutRoutes) else {
                throw LanesError("cannot read route file '\(dutRoutes)'", fix: "give 'kernel' or a readable file of lines 'PREFIX/LEN NEXTHOP-MAC'")
            }
            c.dutRoutes = dutRoutes == "kernel" ? nil : URL(fileURLWithPath: dutRoutes).path
        }
        c.dutPath = dutPath
        if let impair {
            guard dut == "lanes" else { throw LanesError("--impair and --dut \(dut) conflict", fix: "the impaired device is a lanes forwarder: use --dut lanes") }
            c.impair = impair
        }
        let dir = try out.map(Experiment.outputDirectory)
        try RFC2544Runner.check(c)
        let estimate = RFC2544Runner.estimate(c)
        printError("lanes rfc2544: \(c.tests.map(\.rawValue).joined(separator: ", ")) for \(c.sizes.count * c.flows.count) size x flow points, about \(estimate.trials) trials, about \(Int(estimate.seconds)) s (more when a verification fails)\n")
        let latch = Experiment.StopLatch()
        var result = try RFC2544Runner.run(c, stop: latch.poll) { printError($0 + "\n") }
        result.interrupted = latch.name
        let data = try Experiment.json(result)
        let report = RFC2544Runner.report(result)
        if let dir {
            try Experiment.write([("results.json", data), ("report.md", Data(report.utf8)), ("plot.svg", Data(RFC2544Plot.svg(result).utf8))], to: dir)
        }
        if json { print(String(decoding: data, as: UTF8.self)) } else { print(report) }
        if let why = result.interrupted {
            printError("lanes: error: rfc2544 interrupted by \(why) after \(result.points.count) points (those are printed)\n")
            throw ExitCode(128 + latch.signal)
        }
    }
}
