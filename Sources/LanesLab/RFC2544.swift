import Foundation
import LanesCore
import LanesReport
import LanesXDP

/// `lanes rfc2544`: RFC 2544's throughput (NDR and PDR), latency, frame loss
/// rate and back-to-back tests for a device under test, per frame size and flow
/// count. Traffic goes from a transmit port through the device to a receive
/// port; the receiver counts signed frames in XDP (`gen --rx-only --rx xdp`), so
/// it is never the bottleneck. By default the ports are the testbed's gen:g0 and
/// sink:s0 with the device in the dut namespace; `--dut external` uses the
/// ports the user names and sets nothing up.
///
/// Throughput: one unpaced trial gives the generator's maximum M (the upper
/// bound: a device that loses nothing at M is reported "at least M,
/// generator-bound", never as an NDR); then bisection of [0, M] until the
/// bracket is narrower than `precision` of its top; then a longer verification
/// trial at the lower bound; if that one loses, the bound becomes the top and the
/// search goes on below it (at most 3 verifications). PDR reuses every trial and
/// bisects from the bracket the NDR search left. Trials at 1.1x NDR, as long as
/// the verification, show the rate above NDR loses; when three do not, that rate
/// is the NDR and the search goes on above it (`RFC2544Search.confirm`).
/// rfc2544's sides between hosts: the generator's port, the receiving port and,
/// for `--dut lanes` or `kernel`, the dut's IN and OUT ports (lanes fwd runs there;
/// the frames go to IN's MAC).
public struct RFC2544Hosts: Sendable {
    public var gen: (host: HostSpec, port: String)
    public var rx: (host: HostSpec, port: String)
    public var dut: (host: HostSpec, ports: [String])?
    public var access: SSHAccess
    /// The flows' source and destination addresses (nil: the testbed's 198.18.0.1 ->
    /// 198.18.1.1): the destination is what the dut routes to the receiving port.
    public var genIP: String? = nil, dstIP: String? = nil
    public init(gen: (HostSpec, String), rx: (HostSpec, String), dut: (HostSpec, [String])?, access: SSHAccess) {
        self.gen = gen; self.rx = rx; self.dut = dut; self.access = access
    }
}

public struct RFC2544Config: Sendable {
    /// lanes (lanes fwd --mode l3), kernel (Linux IP forwarding), none (the plain
    /// veth g0 -> d0: calibration) or external (the user's ports, nothing set up).
    public var dut = "lanes"
    public var sizes: [RFC2544Frame] = [.bytes(64), .bytes(1518)]
    public var flows = [1, 64]
    public var tests: [RFC2544Test] = RFC2544Test.allCases
    public var trialSeconds = 2.0
    public var verifySeconds = 5.0
    /// Relative width of the final bracket (throughput and back-to-back), e.g. 0.005.
    public var precision = 0.005
    /// The PDR's loss ratio, e.g. 0.005 (FD.io CSIT's).
    public var pdr = 0.005
    /// Latency is measured at these fractions of NDR.
    public var latencyAt = [0.1, 0.5, 0.9, 1.0]
    /// Frame loss rate: offered load falls from 100% of the maximum by this step.
    public var lossStep = 0.1
    /// Back-to-back: the longest burst tried lasts this long at the generator's maximum.
    public var b2bSeconds = 2.0
    /// Back-to-back: independent searches, averaged (RFC 2544 asks for 50; each is a search here).
    public var b2bSearches = 2
    public var testbed = "lanes-2544"
    /// The VM testbed: the dut (lanes fwd, or the guest kernel's forwarding) runs in
    /// a QEMU guest, d0 (virtio_net) in, d1 (igb) out; generator g0 and receiver g1 on the host.
    public var vm = false
    /// A known-bad device for checking the method: `lanes fwd --mode io --impair SPEC`.
    public var impair: String? = nil
    /// `--dut lanes`: its `fwd --routes` (nil: the kernel's FIB).
    public var dutRoutes: String? = nil
    /// `--dut lanes`: its `fwd --path` (xsk: the lanes; xdp: forwarded in the XDP program; auto).
    public var dutPath = "xsk"
    /// `--dut external`: the ports, their namespaces (nil: this one) and the MAC frames are sent to.
    public var txPort: String? = nil
    public var rxPort: String? = nil
    public var txNetns: String? = nil
    public var rxNetns: String? = nil
    public var dstMac: String? = nil
    /// Between hosts (`--gen-host`, `--rx-host`, `--dut-host`): each side's port on
    /// its host, reached over SSH; nil: the testbed (or `--dut external` here).
    public var hosts: RFC2544Hosts? = nil
    public init() {}
}

/// A frame size of the tests: a fixed size, or the simple IMIX (7:4:1 of 64/570/1518).
/// In JSON a number, or the string "imix".
public enum RFC2544Frame: Hashable, Sendable, Codable, CustomStringConvertible {
    case bytes(Int)
    case imix

    /// Up to jumbo frames (9014 at MTU 9000): the testbed takes the MTU the largest needs.
    public static let sizeRange = 64...9014

    /// Mean frame size, for Gbps.
    public var meanBytes: Double {
        switch self {
        case .bytes(let n): Double(n)
        case .imix:
            Double(FrameSizes.simpleIMIX.reduce(0) { $0 + $1.size * $1.weight }) / Double(FrameSizes.simpleIMIX.reduce(0) { $0 + $1.weight })
        }
    }
    var genArgs: [String] {
        switch self {
        case .bytes(let n): ["--size", "\(n)"]
        case .imix: ["--imix"]
        }
    }
    public var description: String {
        switch self {
        case .bytes(let n): "\(n)"
        case .imix: "imix"
        }
    }

    /// `64,1518,imix`.
    public static func parseList(_ text: String) -> [RFC2544Frame]? {
        var out: [RFC2544Frame] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let p = part.trimmingCharacters(in: .whitespaces)
            if p.lowercased() == "imix" { out.append(.imix); continue }
            guard let n = Int(p), sizeRange.contains(n) else { return nil }
            out.append(.bytes(n))
        }
        return out.isEmpty ? nil : out
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let n = try? c.decode(Int.self) { self = .bytes(n); return }
        guard try c.decode(String.self) == "imix" else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "a frame size is a number or \"imix\"")
        }
        self = .imix
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .bytes(let n): try c.encode(n)
        case .imix: try c.encode("imix")
        }
    }
}

/// The tests of RFC 2544 section 26 that `lanes rfc2544` runs.
public enum RFC2544Test: String, CaseIterable, Sendable, Codable {
    /// 26.1: NDR and PDR.
    case throughput
    /// 26.2: latency at fractions of NDR (needs throughput).
    case latency
    /// 26.3: frame loss rate against offered load.
    case loss
    /// 26.4 and RFC 9004: the longest lossless burst.
    case backToBack = "back-to-back"

    /// `throughput,latency` or `all`.
    public static func parseList(_ text: String) -> [RFC2544Test]? {
        if text == "all" { return allCases }
        var out: [RFC2544Test] = []
        for p in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let t = RFC2544Test(rawValue: p.trimmingCharacters(in: .whitespaces)) else { return nil }
            if !out.contains(t) { out.append(t) }
        }
        return out.isEmpty ? nil : allCases.filter(out.contains)
    }
}

public struct RFC2544Trial: Codable, Sendable {
    public var size: RFC2544Frame
    public var flows: Int
    /// "max", "search", "verify", "above", "latency", "loss" or "burst".
    public var kind: String
    /// The rate asked for (nil: as fast as the generator goes).
    public var requestedPps: Double?
    /// The trial's length (nil for a burst, which is a frame count).
    public var seconds: Double?
    /// A burst's length in frames, sent as fast as the generator goes.
    public var burstFrames: UInt64?
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
    /// Trials at 1.1x NDR as long as the verification, until one loses (at most 3):
    /// a rate above NDR should lose in some trial.
    public struct Above: Codable, Sendable {
        public var pps: Double
        public var lossRatios: [Double]
        /// The NDRs that were raised because 1.1x them lost in none of three
        /// verification-length trials (a short trial's loss below was a stall).
        public var raisedFrom: [Double] = []
        public var lost: Bool { lossRatios.contains { $0 > 0 } }
    }
    /// RFC 2544 26.3: one step of the frame loss rate test.
    public struct LossStep: Codable, Sendable {
        /// Of the generator's maximum.
        public var fraction: Double
        public var offeredPps: Double
        public var lossRatio: Double
    }
    /// RFC 2544 26.4 with RFC 9004's buffer time.
    public struct BackToBack: Codable, Sendable {
        /// The longest lossless burst of each search, and their mean.
        public var frames: [UInt64]
        public var meanFrames: Double
        /// The burst rate: the generator's maximum (this setup's stand-in for the line rate).
        public var burstPps: Double
        /// True when the longest burst tried (the generator's maximum for `--b2b-duration`) lost nothing.
        public var generatorBound: Bool
        /// RFC 9004: mean frames / burst rate.
        public var impliedBufferSeconds: Double
        /// RFC 9004: (mean frames - implied time x NDR) / burst rate; nil without a measured NDR.
        public var correctedBufferSeconds: Double?
    }
    public struct Point: Codable, Sendable {
        public var size: RFC2544Frame
        public var flows: Int
        public var generatorMaxPps: Double
        public var ndr: Rate?
        public var pdr: Rate?
        public var above: Above?
        /// Latency (one-way, from the signatures) at fractions of NDR: "0.5" -> percentiles.
        public var latency: [String: [String: UInt64]]
        public var frameLoss: [LossStep]
        public var backToBack: BackToBack?
    }
    public var tool = "lanes rfc2544"
    public var date: String
    public var machine: String
    public var dut: String
    /// "gen:g0 -> sink:s0", or the external ports.
    public var path: String
    public var tests: [RFC2544Test]
    public var method: String
    public var trialSeconds: Double
    public var verifySeconds: Double
    public var precision: Double
    public var pdrLossRatio: Double
    public var points: [Point]
    public var trials: [RFC2544Trial]
    public var seconds: Double
    public var interrupted: String?
}

/// The searches, apart from how a trial is run: a trial is a closure, so the
/// method is tested on modelled devices without a network.
public enum RFC2544Search {
    /// Runs one trial at `pps` for `seconds` and returns its loss ratio; `kind` names it ("search", "verify").
    public typealias Trial = (_ kind: String, _ pps: Double, _ seconds: Double) throws(LanesError) -> Double

    /// A trial the searches ran: its rate, loss ratio and length.
    public struct Seen: Sendable {
        public var pps: Double, loss: Double, seconds: Double
        public init(pps: Double, loss: Double, seconds: Double) { (self.pps, self.loss, self.seconds) = (pps, loss, seconds) }
    }

    /// Where the PDR search starts from the NDR search's trials: the highest rate
    /// that lost at most `ratio` in every trial at it and lies below every rate that
    /// lost more in a trial as long as the verification; the top is the lowest rate
    /// above that which lost more.
    public static func bracket(for ratio: Double, from seen: [Seen], verifySeconds: Double, floor: Double, maximum: Double) -> (lo: Double, hi: Double) {
        let longFail = seen.filter { $0.seconds >= verifySeconds && $0.loss > ratio }.map(\.pps).min() ?? .infinity
        let failed = Set(seen.filter { $0.loss > ratio }.map(\.pps))
        let lo = max(floor, seen.filter { $0.loss <= ratio && $0.pps < longFail && !failed.contains($0.pps) }.map(\.pps).max() ?? floor)
        let hi = seen.filter { $0.loss > ratio && $0.pps > lo }.map(\.pps).min() ?? maximum
        return (lo, hi)
    }

    /// The highest rate losing at most `ratio`: bisection of [lo, hi] to `precision`
    /// of the top, then a verification trial at the result. A device that loses in
    /// long trials what it keeps in short ones fails it: the failed rate becomes the
    /// top and the bisection runs again below it with trials as long as the
    /// verification, so the rate returned has passed a trial of that length (or is
    /// 0: none, or `floor`). `floor`: a rate already verified for this ratio (PDR:
    /// the NDR), never gone below. `seen` collects every (rate, loss) for the PDR.
    public static func rate(ratio: Double, from startLo: Double, to startHi: Double, floor: Double = 0, precision: Double,
                            trialSeconds: Double, verifySeconds: Double, seen: inout [RFC2544Search.Seen],
                            stop: () -> Bool = { false }, trial: Trial) throws(LanesError) -> (pps: Double, upper: Double) {
        var lo = startLo, hi = startHi, seconds = trialSeconds
        var loPassedLong = false // lo's clean trial was as long as the verification
        for _ in 0..<4 {
            // Until the bracket is narrow enough, or its top is below 1 kpps (a
            // device that loses at every rate has no such rate: "none").
            while hi - lo > precision * hi && hi > 1000 && !stop() {
                let mid = (lo + hi) / 2
                let loss = try trial("search", mid, seconds)
                seen.append(.init(pps: mid, loss: loss, seconds: seconds))
                if loss <= ratio { lo = mid; loPassedLong = seconds >= verifySeconds } else { hi = mid }
            }
            if stop() || lo == 0 || (floor > 0 && lo <= floor) || loPassedLong { break }
            let loss = try trial("verify", lo, verifySeconds)
            seen.append(.init(pps: lo, loss: loss, seconds: verifySeconds))
            if loss <= ratio { break }
            hi = lo
            lo = floor
            seconds = verifySeconds
        }
        return (max(lo, floor), hi)
    }

    /// What `confirm` found: the NDR (raised or not), its bracket's top, the last
    /// trials above it, and the NDRs it raised from.
    public struct Confirmed: Sendable {
        public var ndr: Double
        public var upper: Double?
        public var above: RFC2544Result.Above?
        public var generatorBound: Bool
    }

    /// Shows that a rate above the NDR loses: trials at 1.1x NDR as long as the
    /// verification, until one loses (at most 3: a no-drop rate loses in none). A
    /// rate that lost in none of three is itself a no-drop rate at that length, so
    /// whatever short trial below it lost was a stall, not the device's rate: the
    /// NDR rises to it, the bisection runs again from there up to `maximum` with
    /// trials as long as the verification, and 1.1x the new NDR is tried (at most
    /// `rounds` rises). 1.1x at `maximum` clean is generator-bound.
    public static func confirm(ndr start: Double, upper: Double?, maximum: Double, precision: Double, verifySeconds: Double, rounds: Int = 3,
                               seen: inout [Seen], stop: () -> Bool = { false }, trial: Trial) throws(LanesError) -> Confirmed {
        var c = Confirmed(ndr: start, upper: upper, above: nil, generatorBound: false)
        var raisedFrom: [Double] = []
        while !stop() {
            let rate = min(1.1 * c.ndr, maximum)
            var losses: [Double] = []
            while losses.count < 3 && losses.allSatisfy({ $0 == 0 }) && !stop() {
                let loss = try trial("above", rate, verifySeconds)
                seen.append(.init(pps: rate, loss: loss, seconds: verifySeconds))
                losses.append(loss)
            }
            c.above = .init(pps: rate, lossRatios: losses, raisedFrom: raisedFrom)
            if losses.contains(where: { $0 > 0 }) || losses.count < 3 || raisedFrom.count == rounds { break }
            raisedFrom.append(c.ndr)
            c.above?.raisedFrom = raisedFrom
            if rate >= maximum { (c.ndr, c.upper, c.generatorBound) = (maximum, nil, true); break }
            let r = try Self.rate(ratio: 0, from: rate, to: maximum, floor: rate, precision: precision, trialSeconds: verifySeconds,
                             verifySeconds: verifySeconds, seen: &seen, stop: stop, trial: trial)
            (c.ndr, c.upper) = (r.pps, r.upper)
        }
        return c
    }

    /// RFC 2544 26.3: loss at 100%, 100% - step, ... down to `step` of `maximum`
    /// (every step: RFC 2544 may stop after two lossless steps, but the whole curve
    /// shows where loss begins and how it grows).
    public static func frameLoss(maximum: Double, step: Double, stop: () -> Bool = { false },
                                 trial: (Double) throws(LanesError) -> Double) throws(LanesError) -> [(fraction: Double, loss: Double)] {
        var out: [(Double, Double)] = []
        var k = 0
        while !stop() {
            let f = 1 - Double(k) * step
            guard f > step / 2 else { break }
            out.append((f, try trial(f * maximum)))
            k += 1
        }
        return out
    }

    /// RFC 2544 26.4: the longest burst that loses nothing, up to `longest` frames:
    /// from 1024 frames, doubled while clean (halved while lossy), then bisected
    /// until the bracket is within `precision` of its top (or one frame).
    /// Returns 0 when even one frame is lost; `generatorBound` when `longest` is clean.
    public static func backToBack(longest: UInt64, precision: Double, stop: () -> Bool = { false },
                                  burst: (UInt64) throws(LanesError) -> Bool) throws(LanesError) -> (frames: UInt64, generatorBound: Bool) {
        var n = min(1024, longest)
        var clean: UInt64 = 0, lossy: UInt64? = nil
        while !stop() {
            if try burst(n) {
                clean = n
                if n == longest { return (n, true) }
                if lossy != nil { break }
                n = min(n * 2, longest)
            } else {
                lossy = n
                if clean > 0 || n == 1 { break }
                n = max(1, n / 2)
            }
        }
        guard var hi = lossy else { return (clean, false) }
        var lo = clean
        while hi - lo > max(1, UInt64(precision * Double(hi))) && !stop() {
            let mid = lo + (hi - lo) / 2
            if try burst(mid) { lo = mid } else { hi = mid }
        }
        return (lo, false)
    }

    /// RFC 9004's buffer times: implied = frames / burst rate; corrected =
    /// (frames - implied x throughput) / burst rate (the frames the device sent on
    /// during the burst are not in its buffer).
    public static func bufferTimes(meanFrames: Double, burstPps: Double, throughputPps: Double?) -> (implied: Double, corrected: Double?) {
        guard burstPps > 0 else { return (0, nil) }
        let implied = meanFrames / burstPps
        return (implied, throughputPps.map { (meanFrames - implied * $0) / burstPps })
    }
}

public enum RFC2544Runner {
    public static func check(_ c: RFC2544Config) throws(LanesError) {
        try requireRoot(for: "lanes rfc2544")
        guard ["lanes", "kernel", "none", "external"].contains(c.dut) else {
            throw LanesError("bad --dut '\(c.dut)'", fix: "use lanes (lanes fwd --mode l3), kernel (Linux IP forwarding), none (the plain veth, to calibrate) or external (--tx-port/--rx-port)")
        }
        guard !c.sizes.isEmpty, c.sizes.allSatisfy({ if case .bytes(let n) = $0 { RFC2544Frame.sizeRange.contains(n) } else { true } }) else {
            throw LanesError("bad --sizes", fix: "give frame sizes 64-9014 or imix, e.g. 64,1518,imix")
        }
        guard !c.flows.isEmpty, c.flows.allSatisfy({ $0 >= 1 && $0 <= 4096 }) else { throw LanesError("bad --flows", fix: "give flow counts 1-4096, e.g. 1,64") }
        guard !c.tests.isEmpty else { throw LanesError("bad --tests", fix: "name one or more of throughput, latency, loss, back-to-back") }
        if c.tests.contains(.latency) && !c.tests.contains(.throughput) {
            throw LanesError("--tests latency needs throughput", fix: "latency is measured at fractions of NDR: add throughput")
        }
        guard c.trialSeconds >= 0.2, c.verifySeconds >= c.trialSeconds else { throw LanesError("bad --trial-duration/--verify-duration", fix: "trials of 0.2 s or more, the verification at least as long") }
        guard c.precision > 0 && c.precision < 0.5 else { throw LanesError("bad --precision", fix: "give a fraction like 0.5%") }
        guard c.pdr > 0 && c.pdr < 1 else { throw LanesError("bad --pdr", fix: "give a loss ratio like 0.5%") }
        guard c.lossStep >= 0.01 && c.lossStep <= 0.5 else { throw LanesError("bad --loss-step", fix: "give a step of 1%-50% of the maximum, e.g. 10%") }
        guard c.b2bSeconds > 0 && c.b2bSeconds <= 60, c.b2bSearches >= 1 && c.b2bSearches <= 50 else {
            throw LanesError("bad --b2b-duration/--b2b-searches", fix: "a longest burst of up to 60 s, 1-50 searches")
        }
        if c.vm {
            guard c.dut == "lanes" || c.dut == "kernel" else { throw LanesError("--vm takes --dut lanes or kernel", fix: "the guest forwards d0 -> d1; use --dut lanes or --dut kernel") }
            let largest = c.sizes.map { if case .bytes(let n) = $0 { n } else { 1518 } }.max() ?? 1518
            guard largest <= 1518 else { throw LanesError("--sizes up to 1518 with --vm: the VM testbed runs at MTU 1500", fix: "give sizes 64-1518 or imix") }
            guard c.impair == nil else { throw LanesError("--impair and --vm conflict", fix: "drop --impair") }
            if VMTestbed.exists(name: c.testbed) || Testbed(name: c.testbed).namespaces.contains(where: NetworkNamespace.exists) {
                throw LanesError("testbed '\(c.testbed)' exists; the run builds and removes its own", fix: "give --testbed a new name, or 'lanes testbed down --name \(c.testbed)'")
            }
        }
        guard ["xsk", "xdp", "auto"].contains(c.dutPath) else { throw LanesError("bad --dut-path '\(c.dutPath)'", fix: "use xsk, xdp or auto (lanes fwd --path)") }
        if c.dutPath != "xsk" && (c.dut != "lanes" || c.impair != nil) {
            throw LanesError("--dut-path needs --dut lanes (and no --impair)")
        }
        if let h = c.hosts {
            guard !c.vm else { throw LanesError("--vm and --gen-host/--rx-host/--dut-host conflict", fix: "give one of them") }
            guard c.impair == nil else { throw LanesError("--impair between hosts: not so far", fix: "drop --impair") }
            // One-way latency subtracts the generator's send stamp from the receiver's clock.
            if c.tests.contains(.latency) && h.rx.host != h.gen.host {
                throw LanesError("--tests latency with the receiver on another host than the generator: their clocks are not comparable",
                                 fix: "receive on the generator's host (--rx-host as --gen-host), through the dut and back, or drop latency from --tests")
            }
            for (flag, v) in [("--tx-port", c.txPort), ("--rx-port", c.rxPort), ("--tx-netns", c.txNetns), ("--rx-netns", c.rxNetns)] where v != nil {
                throw LanesError("\(flag) and --gen-host/--rx-host conflict", fix: "between hosts the ports are --gen-port and --rx-port, each on its host")
            }
            switch c.dut {
            case "lanes", "kernel":
                guard let d = h.dut, d.ports.count == 2 else {
                    throw LanesError("--dut \(c.dut) between hosts needs --dut-host and --dut-port IN,OUT", fix: "e.g. --dut-host root@10.0.0.6 --dut-port ens5,ens6")
                }
                if c.dstMac != nil { throw LanesError("--dst-mac and --dut \(c.dut) conflict", fix: "the frames go to the dut's IN port (its MAC is learnt)") }
            case "external":
                guard let mac = c.dstMac, isMAC(mac) else { throw LanesError("--dut external needs --dst-mac", fix: "give the MAC of the device's port that --gen-port reaches") }
                if h.dut != nil { throw LanesError("--dut-host and --dut external conflict", fix: "an external device runs nothing of Lanes: drop --dut-host") }
            default:
                if h.dut != nil { throw LanesError("--dut-host and --dut none conflict", fix: "drop --dut-host") }
            }
            return
        }
        if c.dut == "external" {
            guard let tx = c.txPort, let rx = c.rxPort else {
                throw LanesError("--dut external needs --tx-port and --rx-port", fix: "name the ports cabled to the device, e.g. --tx-port eth1 --rx-port eth2")
            }
            guard let mac = c.dstMac, isMAC(mac) else {
                throw LanesError("--dut external needs --dst-mac", fix: "give the MAC of the device's port that --tx-port reaches, six hex bytes like 02:4c:00:00:00:02")
            }
            for (flag, port, ns) in [("--tx-port", tx, c.txNetns), ("--rx-port", rx, c.rxNetns)] {
                if let ns, !NetworkNamespace.exists(ns) { throw LanesError("\(flag == "--tx-port" ? "--tx-netns" : "--rx-netns") '\(ns)': no such network namespace") }
                guard linkExists(port, namespace: ns) else { throw LanesError("\(flag) '\(port)': no such interface\(ns.map { " in namespace \($0)" } ?? "")") }
            }
            guard tx != rx || c.txNetns != c.rxNetns else { throw LanesError("--tx-port and --rx-port are the same port", fix: "give the two ports on either side of the device") }
            guard c.impair == nil else { throw LanesError("--impair and --dut external conflict", fix: "the impaired device is a lanes forwarder: use --dut lanes") }
            return
        }
        for (flag, v) in [("--tx-port", c.txPort), ("--rx-port", c.rxPort), ("--tx-netns", c.txNetns), ("--rx-netns", c.rxNetns), ("--dst-mac", c.dstMac)] where v != nil {
            throw LanesError("\(flag) and --dut \(c.dut) conflict", fix: "the ports are the testbed's unless --dut external")
        }
        try Testbed.validate(name: c.testbed)
        let tb = Testbed(name: c.testbed)
        if let ns = tb.namespaces.first(where: NetworkNamespace.exists) {
            throw LanesError("testbed '\(tb.name)' exists (namespace \(ns)); rfc2544 builds and removes its own",
                             fix: "give --testbed a new name, or remove it with 'lanes testbed down --name \(tb.name)', or use --dut external with its ports")
        }
    }

    static func isMAC(_ s: String) -> Bool {
        let parts = s.split(separator: ":", omittingEmptySubsequences: false)
        return parts.count == 6 && parts.allSatisfy { $0.count == 2 && $0.allSatisfy(\.isHexDigit) }
    }

    static func linkExists(_ iface: String, namespace ns: String?) -> Bool {
        ((try? Shell.run((ns.map { ["ip", "-n", $0] } ?? ["ip"]) + ["link", "show", "dev", iface], check: false))?.status ?? 1) == 0
    }

    /// Trials the run takes at most (about), and their time, for the estimate printed at the start.
    public static func estimate(_ c: RFC2544Config) -> (trials: Int, seconds: Double) {
        let overhead = 1.5 // a trial's start and end: two processes, XDP attached, the last frames landing
        let bisections = Int((log2(1 / c.precision)).rounded(.up))
        var trials = 1, seconds = c.trialSeconds + overhead
        if c.tests.contains(.throughput) {
            trials += 2 * bisections + 3
            seconds += Double(2 * bisections) * (c.trialSeconds + overhead) + 3 * (c.verifySeconds + overhead)
        }
        if c.tests.contains(.latency) { trials += c.latencyAt.count; seconds += Double(c.latencyAt.count) * (c.trialSeconds + overhead) }
        if c.tests.contains(.loss) {
            let steps = Int((1 / c.lossStep).rounded(.down))
            trials += steps; seconds += Double(steps) * (c.trialSeconds + overhead)
        }
        if c.tests.contains(.backToBack) {
            let per = 12 + bisections // doublings from 1024 to ~2 s at a few Mpps, then the bisection
            trials += per * c.b2bSearches; seconds += Double(per * c.b2bSearches) * (overhead + c.b2bSeconds / 4)
        }
        let points = c.sizes.count * c.flows.count
        return (trials * points, seconds * Double(points))
    }

    /// Where frames go in and come out, and how the generator addresses them.
    struct Path {
        var txPort: String, txNetns: String?
        var rxPort: String, rxNetns: String?
        /// Where the generator and the receiver run (between hosts; else here).
        var txHost: HostSpec = .local, rxHost: HostSpec = .local
        /// The generator's command before the trial's values: the testbed's
        /// defaults, or the TX port and the external device's MAC.
        var gen: LanesCommand
        var label: String
    }

    public static func run(_ c: RFC2544Config, stop: () -> Bool = { false }, progress: (String) -> Void) throws(LanesError) -> RFC2544Result {
        try check(c)
        let started = Date()
        let tb = Testbed(name: c.testbed)
        let path: Path
        var forwarder: Child? = nil
        defer { if let f = forwarder { f.interrupt(); _ = f.wait(timeout: 10) } }
        let vm = c.vm ? VMTestbed(name: c.testbed) : nil
        defer { if let vm { try? vm.down() } else if c.dut != "external" && c.hosts == nil { try? tb.down() } }
        let access = c.hosts?.access ?? SSHAccess()
        func attached(_ host: HostSpec, _ ns: String?, _ port: String) -> Bool { xdpAttached(namespace: ns, interface: port, on: host, access: access) }
        var accelerator = ""
        // The testbed's MTU: what the largest frame needs (jumbo: AF_XDP multi-buffer on the Lanes side).
        let largest = c.sizes.map { if case .bytes(let n) = $0 { n } else { 1518 } }.max() ?? 1518
        let mtu = max(1500, largest - 14)
        switch c.dut {
        case _ where c.hosts != nil:
            let h = c.hosts!
            let tx = try Remote.preflight(host: h.gen.host, port: h.gen.port, access: access)
            let rx = try Remote.preflight(host: h.rx.host, port: h.rx.port, access: access)
            var mac = c.dstMac
            var through = "external device (\(c.dstMac ?? ""))"
            if let d = h.dut {
                let inPort = try Remote.preflight(host: d.host, port: d.ports[0], access: access)
                _ = try Remote.preflight(host: d.host, port: d.ports[1], access: access)
                guard let m = inPort.info.mac else { throw LanesError("\(d.host): port \(d.ports[0]) has no MAC address") }
                mac = m
                through = "\(dutName(c)) on \(d.host) \(d.ports[0]) -> \(d.ports[1])"
            }
            var g = LanesCommand(.gen, ports: [tx.port])
            if let mac { g.extra = ["--dst-mac", mac] }
            g.extra += (h.genIP.map { ["--src-ip", $0] } ?? []) + (h.dstIP.map { ["--dst-ip", $0] } ?? [])
            path = Path(txPort: tx.port, txNetns: nil, rxPort: rx.port, rxNetns: nil, txHost: tx.host, rxHost: rx.host, gen: g,
                        label: c.dut == "none" ? "\(tx.host) \(tx.port) -> \(rx.host) \(rx.port)" : "\(tx.host) \(tx.port) -> \(through) -> \(rx.host) \(rx.port)")
        case _ where vm != nil:
            accelerator = try vm!.up(queues: 2).accelerator
            var g = LanesCommand(.gen, testbed: tb.name)
            g.extra = ["--tx", "xsk"]
            path = Path(txPort: "g0", txNetns: vm!.gen, rxPort: "g1", rxNetns: vm!.gen, gen: g,
                        label: "gen:g0 -> guest d0 (virtio_net) ... guest d1 (igb) -> gen:g1, the guest under QEMU \(accelerator)\(accelerator == "tcg" ? " (emulated: not performance figures)" : "")")
        case "external":
            path = Path(txPort: c.txPort!, txNetns: c.txNetns, rxPort: c.rxPort!, rxNetns: c.rxNetns,
                        gen: { var g = LanesCommand(.gen, ports: [c.txPort!], netns: c.txNetns); g.extra = ["--dst-mac", c.dstMac!]; return g }(),
                        label: "\(c.txNetns.map { "\($0):" } ?? "")\(c.txPort!) -> external device (\(c.dstMac!)) -> \(c.rxNetns.map { "\($0):" } ?? "")\(c.rxPort!)")
        case "none":
            try tb.up(queues: Sysfs.onlineCPUs(), mtu: mtu)
            path = Path(txPort: "g0", txNetns: tb.gen, rxPort: "d0", rxNetns: tb.dut, gen: LanesCommand(.gen, testbed: tb.name), label: "gen:g0 -> dut:d0 (plain veth, no device)")
        default:
            try tb.up(queues: Sysfs.onlineCPUs(), mtu: mtu)
            path = Path(txPort: "g0", txNetns: tb.gen, rxPort: "s0", rxNetns: tb.sink, gen: LanesCommand(.gen, testbed: tb.name), label: "gen:g0 -> dut:d0 ... dut:d1 -> sink:s0")
        }
        if c.dut == "lanes", let h = c.hosts, let d = h.dut {
            // lanes fwd on the dut's host, IN -> OUT by that host's kernel FIB.
            var fwd = LanesCommand(.fwd, ports: d.ports)
            fwd.mode = "l3"
            fwd.filter = "udp dport 9000"
            fwd.extra = ["--path", c.dutPath]
            let f = try Child(fwd, on: d.host, access: access)
            forwarder = f
            var waited = 0.0
            while !attached(d.host, nil, d.ports[0]) && waited < 30 { usleep(100_000); waited += 0.1 }
            guard attached(d.host, nil, d.ports[0]) else {
                f.interrupt()
                throw LanesError("lanes fwd did not start on \(d.host): \(f.wait(timeout: 10).stderr.split(whereSeparator: \.isNewline).last ?? "")")
            }
            usleep(300_000)
        } else if c.dut == "lanes", let vm {
            // lanes fwd in the guest, d0 -> d1 by the guest kernel's routes, through exec.
            var fwd = LanesCommand(.fwd, ports: ["d0", "d1"])
            fwd.mode = "l3"
            fwd.filter = "udp dport 9000"
            // Copy mode: igb's zero-copy TX sends nothing under QEMU 10.0.2 (its RX works).
            fwd.extra = c.dutPath == "xsk" ? ["--bind", "copy"] : ["--path", c.dutPath]
            let f = try Child(arguments: ["testbed", "exec", "dut", "--name", vm.name, "--", Child.lanesBinary] + fwd.arguments)
            forwarder = f
            var waited = 0.0
            while !vm.guestHasXDP("d0") && waited < 30 { usleep(300_000); waited += 0.3 }
            guard vm.guestHasXDP("d0") else {
                f.interrupt()
                throw LanesError("lanes fwd did not start in the guest: \(f.wait(timeout: 5).stderr.split(separator: "\n").last ?? "")")
            }
            usleep(300_000)
        } else if c.dut == "lanes" {
            var fwd = LanesCommand(.fwd, testbed: tb.name)
            fwd.mode = c.impair == nil ? "l3" : "io"
            fwd.extra = c.impair.map { ["--impair", $0] } ?? ((c.dutRoutes.map { ["--routes", $0] } ?? []) + ["--path", c.dutPath])
            fwd.filter = "udp dport 9000"
            let f = try Child(fwd)
            forwarder = f
            var waited = 0.0
            while !xdpAttached(namespace: tb.dut, interface: "d0") && waited < 15 { usleep(20_000); waited += 0.02 }
            guard xdpAttached(namespace: tb.dut, interface: "d0") else {
                f.interrupt()
                throw LanesError("lanes fwd did not start on the dut: \(f.wait(timeout: 5).stderr.split(separator: "\n").last ?? "")")
            }
            usleep(300_000)
        }
        if c.dut == "kernel" && vm == nil && c.hosts == nil {
            // As in `lanes scale`: with veth's default softirq the kernel's forwarding runs
            // in the sender's context and slows the generator to its own pace (every trial
            // lossless, generator-bound); a NAPI kthread per queue, pinned, decouples them.
            _ = try ScaleRunner.setNAPI(.threaded, testbed: tb, cores: (0..<Sysfs.onlineCPUs()).map { $0 })
        }
        var trials: [RFC2544Trial] = []
        var points: [RFC2544Result.Point] = []
        /// One trial: a receiver on the receive port, then the generator for `seconds`
        /// (or a burst of `count` frames, unpaced), then the receiver's count.
        func trial(_ frame: RFC2544Frame, _ flows: Int, _ kind: String, _ pps: Double?, seconds: Double?, count: UInt64? = nil) throws(LanesError) -> RFC2544Trial {
            var rxRun = LanesCommand(.gen, ports: [path.rxPort], netns: path.rxNetns)
            rxRun.extra = ["--rx-only", "--rx", "xdp"]
            rxRun.flows = flows
            rxRun.duration = Double(Int((seconds ?? 0) + 60))
            let rx = try Child(rxRun, on: path.rxHost, access: access)
            var waited = 0.0
            while !attached(path.rxHost, path.rxNetns, path.rxPort) && waited < 15 { usleep(path.rxHost.isLocal ? 20_000 : 100_000); waited += path.rxHost.isLocal ? 0.02 : 0.1 }
            usleep(200_000)
            var genRun = path.gen
            genRun.flows = flows
            genRun.extra += frame.genArgs
            genRun.duration = seconds
            genRun.count = count
            genRun.rate = pps.map { .pps($0) }
            let tapDropsBefore = vm?.tapTxDropped(path.txPort) ?? 0
            let g = try Child(genRun, on: path.txHost, access: access).wait(timeout: (seconds ?? c.b2bSeconds) + 60, stop: stop)
            usleep(300_000) // the last frames land
            rx.interrupt()
            let r = rx.wait(timeout: 10)
            guard g.status == 0 || stop() else { throw LanesError("generator failed at \(frame) B, \(flows) flows: \(g.stderr.split(separator: "\n").last ?? "")") }
            guard r.status == 0 || stop() else { throw LanesError("receiver failed at \(frame) B, \(flows) flows: \(r.stderr.split(separator: "\n").last ?? "")") }
            let gj = Report.last(g.stdout), rj = Report.last(r.stdout)
            let tx = gj?.txPackets ?? 0, got = rj?.rxPackets ?? 0
            let latency = rj?.latency?.byName
            let t = RFC2544Trial(size: frame, flows: flows, kind: kind, requestedPps: pps, seconds: seconds, burstFrames: count,
                                 offeredPps: gj?.txPps ?? 0, txPackets: tx, rxPackets: got,
                                 lossRatio: tx == 0 ? 1 : Double(tx - min(tx, got)) / Double(tx), latencyNs: latency)
            if stop() { return t } // cut short by a signal: not a trial
            if let vm, tx > 0, got == 0, pps != nil {
                // A paced trial of which the guest took nothing, its tap dropping it all: QEMU
                // stopped reading that tap queue (seen under TCG with QEMU 10.0.2's virtio-net
                // after an overload, with or without an XDP program; a virtio queue reset
                // revives it). Every later trial would lose everything: no figure, a clear end.
                let dropped = vm.tapTxDropped(path.txPort) &- tapDropsBefore
                if Double(dropped) >= 0.99 * Double(tx) {
                    throw LanesError("the guest took none of the \(tx) frames of trial \(trials.count + 1) at \(String(format: "%.4f", (pps ?? 0) / 1e6)) Mpps: tap \(path.txPort) dropped \(dropped) (QEMU stopped reading it after the overload, a virtio-net stall of the emulator); no NDR can be found",
                                     fix: "run it again, or with a guest under KVM")
                }
            }
            trials.append(t)
            let what = count.map { "burst of \($0)" } ?? "\(kind) at \(pps.map { String(format: "%.4f Mpps", $0 / 1e6) } ?? "max")"
            progress("[\(trials.count)] \(frame) B, \(flows) flow\(flows == 1 ? "" : "s"), \(what): offered \(String(format: "%.4f", t.offeredPps / 1e6)) Mpps, loss \(String(format: "%.5f%%", t.lossRatio * 100)) (\(Int(Date().timeIntervalSince(started))) s)")
            return t
        }
        points: for frame in c.sizes {
            func gbps(_ pps: Double) -> Double { pps * frame.meanBytes * 8 / 1e9 }
            for flows in c.flows {
                if stop() { break points }
                let top = try trial(frame, flows, "max", nil, seconds: c.trialSeconds)
                let maximum = top.offeredPps
                var point = RFC2544Result.Point(size: frame, flows: flows, generatorMaxPps: maximum, latency: [:], frameLoss: [])
                if c.tests.contains(.throughput) {
                    var seen: [RFC2544Search.Seen] = [.init(pps: maximum, loss: top.lossRatio, seconds: c.trialSeconds)]
                    func run(_ kind: String, _ pps: Double, _ seconds: Double) throws(LanesError) -> Double { try trial(frame, flows, kind, pps, seconds: seconds).lossRatio }
                    func search(_ ratio: Double, _ lo: Double, _ hi: Double, floor: Double = 0) throws(LanesError) -> RFC2544Result.Rate {
                        if top.lossRatio <= ratio { return .init(pps: maximum, gbps: gbps(maximum), upperPps: nil, generatorBound: true) }
                        let r = try RFC2544Search.rate(ratio: ratio, from: lo, to: hi, floor: floor, precision: c.precision, trialSeconds: c.trialSeconds,
                                                       verifySeconds: c.verifySeconds, seen: &seen, stop: stop, trial: run)
                        return .init(pps: r.pps, gbps: gbps(r.pps), upperPps: r.upper, generatorBound: false)
                    }
                    var ndr = try search(0, 0, maximum)
                    if !ndr.generatorBound && ndr.pps > 0 && !stop() {
                        let k = try RFC2544Search.confirm(ndr: ndr.pps, upper: ndr.upperPps, maximum: maximum, precision: c.precision,
                                                          verifySeconds: c.verifySeconds, seen: &seen, stop: stop, trial: run)
                        ndr = .init(pps: k.ndr, gbps: gbps(k.ndr), upperPps: k.upper, generatorBound: k.generatorBound)
                        point.above = k.above
                    }
                    // PDR from what the trials showed: at least NDR, below the lowest rate that lost more than the ratio.
                    let b = RFC2544Search.bracket(for: c.pdr, from: seen, verifySeconds: c.verifySeconds, floor: ndr.pps, maximum: maximum)
                    point.pdr = ndr.generatorBound ? ndr : try search(c.pdr, b.lo, b.hi, floor: ndr.pps)
                    point.ndr = ndr
                    if c.tests.contains(.latency), let n = point.ndr, n.pps > 0 {
                        for f in c.latencyAt where !stop() {
                            if let l = try trial(frame, flows, "latency", n.pps * f, seconds: c.trialSeconds).latencyNs { point.latency[String(format: "%g", f)] = l }
                        }
                    }
                }
                if c.tests.contains(.loss) && !stop() {
                    var offered: [Double] = []
                    let steps = try RFC2544Search.frameLoss(maximum: maximum, step: c.lossStep, stop: stop) { (pps) throws(LanesError) in
                        let t = try trial(frame, flows, "loss", pps, seconds: c.trialSeconds)
                        offered.append(t.offeredPps)
                        return t.lossRatio
                    }
                    point.frameLoss = zip(steps, offered).map { .init(fraction: $0.0.fraction, offeredPps: $0.1, lossRatio: $0.0.loss) }
                }
                if c.tests.contains(.backToBack) && !stop() {
                    var found: [UInt64] = [], bound = false, rates: [Double] = []
                    for _ in 0..<c.b2bSearches where !stop() {
                        let b = try RFC2544Search.backToBack(longest: max(1, UInt64(maximum * c.b2bSeconds)), precision: c.precision, stop: stop) { (n) throws(LanesError) in
                            let t = try trial(frame, flows, "burst", nil, seconds: nil, count: n)
                            rates.append(t.offeredPps)
                            return t.rxPackets >= t.txPackets && t.txPackets == n
                        }
                        found.append(b.frames)
                        bound = bound || b.generatorBound
                    }
                    if !found.isEmpty {
                        let mean = Double(found.reduce(0, +)) / Double(found.count)
                        let ndr = point.ndr.flatMap { $0.generatorBound || $0.pps == 0 ? nil : $0.pps }
                        let times = RFC2544Search.bufferTimes(meanFrames: mean, burstPps: maximum, throughputPps: ndr)
                        point.backToBack = .init(frames: found, meanFrames: mean, burstPps: maximum, generatorBound: bound,
                                                 impliedBufferSeconds: times.implied, correctedBufferSeconds: times.corrected)
                    }
                }
                if stop() { break points }
                points.append(point)
            }
        }
        let cpu = (Sysfs.read("/proc/cpuinfo") ?? "").split(separator: "\n").first { $0.hasPrefix("model name") }
            .map { String($0.split(separator: ":", maxSplits: 1).last ?? "").trimmingCharacters(in: .whitespaces) } ?? "?"
        var method = ["every test starts with an unpaced \(c.trialSeconds) s trial: the generator's maximum, which bounds the rest",
                      "loss = frames sent less frames counted at \(path.rxPort) (XDP)"]
        if c.tests.contains(.throughput) {
            method.append("throughput: binary search between 0 and the maximum to \(c.precision * 100)% of the bracket's top, \(c.trialSeconds) s trials, a \(c.verifySeconds) s verification at the result (if it loses, the bisection runs again below it with \(c.verifySeconds) s trials), then \(c.verifySeconds) s trials at 1.1x NDR until one loses (at most 3; if none does, 1.1x NDR is the new NDR and the bisection runs again above it with \(c.verifySeconds) s trials, at most 3 times); PDR loss ratio \(c.pdr * 100)%")
        }
        if c.tests.contains(.latency) { method.append("latency: one-way, from the generator's signatures, in \(c.trialSeconds) s trials at \(c.latencyAt.map { "\(Int($0 * 100))%" }.joined(separator: ", ")) of NDR") }
        if c.tests.contains(.loss) { method.append("frame loss: \(c.trialSeconds) s trials from 100% of the maximum down to \(Int(c.lossStep * 100))% in steps of \(Int(c.lossStep * 100))% (RFC 2544 26.3)") }
        if c.tests.contains(.backToBack) {
            method.append("back-to-back: bursts at the generator's maximum from 1024 frames, doubled while lossless, then bisected to \(c.precision * 100)% (at most \(c.b2bSeconds) s of frames), \(c.b2bSearches) searches averaged; buffer time after RFC 9004 with the generator's maximum as the burst rate")
        }
        return RFC2544Result(date: ISO8601DateFormatter().string(from: Date()),
                             machine: "\(cpu), \(Sysfs.onlineCPUs()) CPUs" + (vm == nil ? "" : "; the dut a QEMU guest under \(accelerator)\(accelerator == "tcg" ? ", EMULATED: the rates are not performance figures" : "")"),
                             dut: dutName(c), path: path.label, tests: c.tests, method: method.joined(separator: "; "),
                             trialSeconds: c.trialSeconds, verifySeconds: c.verifySeconds, precision: c.precision, pdrLossRatio: c.pdr,
                             points: points, trials: trials, seconds: Date().timeIntervalSince(started), interrupted: nil)
    }

    static func dutName(_ c: RFC2544Config) -> String {
        switch c.dut {
        case "kernel": "Linux IP forwarding"
        case "none": "none (the plain veth path, calibration)"
        case "external": "external device"
        default: c.impair.map { "lanes fwd --mode io --impair \($0)" } ?? "lanes fwd --mode l3 --path \(c.dutPath)"
        }
    }

    static func mpps(_ v: Double) -> String { String(format: "%.3f", v / 1e6) }

    /// The Markdown report: device, machine, method, then one table per test.
    public static func report(_ r: RFC2544Result) -> String {
        func rate(_ x: RFC2544Result.Rate) -> String {
            x.pps == 0 && !x.generatorBound ? "none (every trial lost more)" : x.generatorBound ? "at least \(mpps(x.pps)) (generator-bound)" : mpps(x.pps)
        }
        var s = "# \(r.tool): \(r.dut)\n\nPath: \(r.path). Machine: \(r.machine). \(r.date), \(Int(r.seconds)) s.\n\nMethod: \(r.method).\n"
        let thr = r.points.filter { $0.ndr != nil }
        if !thr.isEmpty {
            s += "\n## Throughput\n\n| frame B | flows | NDR Mpps | NDR Gbps | PDR Mpps | PDR Gbps | generator max Mpps | loss at 1.1x NDR |\n|---|---:|---|---:|---|---:|---:|---:|\n"
            for p in thr {
                guard let n = p.ndr, let d = p.pdr else { continue }
                let above = p.above.map { a in a.lossRatios.map { String(format: "%.4f%%", $0 * 100) }.joined(separator: ", ") + (a.lost ? "" : " (none lost: read NDR as a lower bound)") + (a.raisedFrom.isEmpty ? "" : " (NDR raised from " + a.raisedFrom.map(mpps).joined(separator: ", ") + " Mpps: 1.1x lost in no verification-length trial)") } ?? "-"
                s += "| \(p.size) | \(p.flows) | \(rate(n)) | \(String(format: "%.3f", n.gbps)) | \(rate(d)) | \(String(format: "%.3f", d.gbps)) | \(mpps(p.generatorMaxPps)) | \(above) |\n"
            }
        }
        let withLatency = r.points.filter { !$0.latency.isEmpty }
        if !withLatency.isEmpty {
            s += "\n## Latency\n\nOne-way, ns, at fractions of NDR:\n\n| frame B | flows | load | min | p50 | p90 | p99 | p99.9 | max |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
            for p in withLatency {
                for (load, l) in p.latency.sorted(by: { Double($0.key) ?? 0 < Double($1.key) ?? 0 }) {
                    let v = ["min_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"].map { l[$0].map(String.init) ?? "-" }
                    s += "| \(p.size) | \(p.flows) | \(Int((Double(load) ?? 0) * 100))% | " + v.joined(separator: " | ") + " |\n"
                }
            }
        }
        let withLoss = r.points.filter { !$0.frameLoss.isEmpty }
        if !withLoss.isEmpty {
            s += "\n## Frame loss rate\n\nLoss ratio at fractions of the generator's maximum:\n\n| frame B | flows | " + "load | offered Mpps | loss |\n|---|---:|---:|---:|---:|\n"
            for p in withLoss {
                for l in p.frameLoss {
                    s += "| \(p.size) | \(p.flows) | \(Int((l.fraction * 100).rounded()))% | \(mpps(l.offeredPps)) | \(String(format: "%.4f%%", l.lossRatio * 100)) |\n"
                }
            }
        }
        let withB2B = r.points.compactMap { p in p.backToBack.map { (p, $0) } }
        if !withB2B.isEmpty {
            s += "\n## Back-to-back\n\nLongest burst with no loss at the generator's maximum:\n\n| frame B | flows | burst Mpps | frames (each search) | mean frames | implied buffer | corrected buffer (RFC 9004) |\n|---|---:|---:|---|---:|---:|---:|\n"
            for (p, b) in withB2B {
                let frames = b.generatorBound ? "at least \(b.frames.max() ?? 0) (generator-bound)" : b.frames.map(String.init).joined(separator: ", ")
                s += "| \(p.size) | \(p.flows) | \(mpps(b.burstPps)) | \(frames) | \(String(format: "%.0f", b.meanFrames)) | \(String(format: "%.1f us", b.impliedBufferSeconds * 1e6)) | \(b.correctedBufferSeconds.map { String(format: "%.1f us", $0 * 1e6) } ?? "- (no NDR)") |\n"
            }
        }
        s += "\n\(r.trials.count) trials (every one in the JSON).\n"
        return s
    }
}
