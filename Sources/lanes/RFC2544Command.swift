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
        abstract: "RFC 2544 throughput (NDR and PDR by binary search with verification) and latency for a device under test.",
        discussion: """
        Traffic goes gen:g0 -> dut -> sink:s0 on its own testbed (created and removed); the
        receiver counts signed frames in XDP on s0. --dut lanes runs 'lanes fwd --mode l3' on
        the dut; --dut kernel forwards with Linux IP forwarding. Each search starts with an
        unpaced trial (the generator's maximum bounds it: a device that loses nothing there
        is 'at least' that, generator-bound), bisects to --precision, and verifies the result
        with a --verify-duration trial. Every trial is in the JSON.
        Example: lanes rfc2544 --dut kernel --sizes 64,1518 --flows 1,64 --out results/rfc2544
        """)
    @Option(help: "Device under test: lanes (lanes fwd --mode l3) or kernel (Linux IP forwarding).") var dut = "lanes"
    @Option(help: "Frame sizes in bytes.") var sizes = "64,1518"
    @Option(help: "Flow counts: 1 and many side by side.") var flows = "1,64"
    @Option(help: "Seconds per search trial.") var trialDuration = 2.0
    @Option(help: "Seconds of the verification trial at the result.") var verifyDuration = 5.0
    @Option(help: "Width of the final bracket, relative to its top (e.g. 0.5%).") var precision = "0.5%"
    @Option(help: "Loss ratio of the partial drop rate (e.g. 0.5%, FD.io CSIT's).") var pdr = "0.5%"
    @Option(help: "Latency at these fractions of NDR.") var latencyAt = "0.1,0.5,0.9,1"
    @Option(help: "Testbed name for the run.") var testbed = "lanes-2544"
    @Option(help: "Directory for results.json and report.md.") var out: String?
    @Flag(help: "Print the JSON on stdout instead of the report.") var json = false
    @Option(help: ArgumentHelp("Check the method against a known-bad device: the dut is 'lanes fwd --mode io --impair SPEC' (e.g. drop=100: 1% lost).", valueName: "drop=N,reorder=M")) var impair: String?

    static func fraction(_ s: String, _ flag: String) throws(LanesError) -> Double {
        let t = s.hasSuffix("%") ? String(s.dropLast()) : s
        guard let v = Double(t) else { throw LanesError("bad --\(flag) '\(s)'", fix: "give a fraction like 0.005 or 0.5%") }
        return s.hasSuffix("%") ? v / 100 : v
    }

    func run() throws {
        var c = RFC2544Config()
        c.dut = dut
        guard let s = FrameSizes.parseList(sizes, minimum: 64, maximum: 3408) else { throw LanesError("bad --sizes '\(sizes)'", fix: "give frame sizes 64-3408, e.g. 64,1518") }
        c.sizes = s
        guard let f = FrameSizes.parseList(flows, minimum: 1, maximum: 4096) else { throw LanesError("bad --flows '\(flows)'", fix: "give flow counts, e.g. 1,64") }
        c.flows = f
        c.trialSeconds = trialDuration
        c.verifySeconds = verifyDuration
        c.precision = try Self.fraction(precision, "precision")
        c.pdr = try Self.fraction(pdr, "pdr")
        let loads = latencyAt.split(separator: ",").map { Double($0) }
        guard !loads.isEmpty, loads.allSatisfy({ $0 != nil && $0! > 0 && $0! <= 1 }) else { throw LanesError("bad --latency-at '\(latencyAt)'", fix: "give fractions of NDR in (0, 1], e.g. 0.5,0.9") }
        c.latencyAt = loads.map { $0! }
        c.testbed = testbed
        if let impair {
            guard dut == "lanes" else { throw LanesError("--impair and --dut \(dut) conflict", fix: "the impaired device is a lanes forwarder: use --dut lanes") }
            c.impair = impair
        }
        let dir = try out.map(Experiment.outputDirectory)
        try RFC2544Runner.check(c)
        let estimate = RFC2544Runner.estimate(c)
        fputs("lanes rfc2544: \(c.sizes.count * c.flows.count) searches, about \(estimate.trials) trials, about \(Int(estimate.seconds)) s (more when a verification fails)\n", stderr)
        let latch = Experiment.StopLatch()
        let t0 = Date()
        var result = try RFC2544Runner.run(c, stop: latch.poll) { fputs($0 + "\n", stderr) }
        result.interrupted = latch.name
        let data = try Experiment.json(result)
        let report = RFC2544Runner.report(result)
        if let dir { try Experiment.write([("results.json", data), ("report.md", Data(report.utf8))], to: dir) }
        if json { print(String(decoding: data, as: UTF8.self)) } else {
            print(report)
            print("took \(Int(Date().timeIntervalSince(t0))) s")
        }
        if let why = result.interrupted {
            fputs("lanes: error: rfc2544 interrupted by \(why) after \(result.points.count) searches (those are printed)\n", stderr)
            throw ExitCode(128 + latch.signal)
        }
    }
}
