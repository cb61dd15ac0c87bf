import LanesLab
import LanesXDP
import Testing

/// The RFC 2544 searches on modelled devices: no network, no root.
@Suite struct RFC2544SearchTests {
    /// A device that forwards up to `capacity` and loses the excess.
    static func device(_ capacity: Double) -> (Double) -> Double { { pps in pps <= capacity ? 0 : (pps - capacity) / pps } }

    @Test(arguments: [50_000.0, 333_333, 1_200_000])
    func ndrIsWithinPrecisionBelowTheCapacityAndVerified(capacity: Double) throws {
        let model = Self.device(capacity)
        var seen: [RFC2544Search.Seen] = []
        var kinds: [String] = []
        let r = try RFC2544Search.rate(ratio: 0, from: 0, to: 2_000_000, precision: 0.005, trialSeconds: 1, verifySeconds: 5, seen: &seen) { (kind, pps, _) throws(LanesError) in
            kinds.append(kind)
            return model(pps)
        }
        #expect(r.pps <= capacity && r.pps >= capacity * 0.995, "NDR \(r.pps) for a device of \(capacity)")
        #expect(r.upper > capacity && r.upper - r.pps <= 0.005 * r.upper)
        #expect(kinds.last == "verify" && kinds.filter { $0 == "verify" }.count == 1)
        #expect(seen.count == kinds.count)
    }

    /// Loss in long trials only (a device that loses at 5 s what it keeps at 1 s):
    /// the failed verification becomes the top, the bisection runs again below it
    /// with 5 s trials, and the result passed a 5 s trial.
    @Test func failedVerificationSearchesBelowWithLongTrials() throws {
        var seen: [RFC2544Search.Seen] = []
        var long: [(Double, Double)] = []
        let r = try RFC2544Search.rate(ratio: 0, from: 0, to: 1_000_000, precision: 0.01, trialSeconds: 1, verifySeconds: 5, seen: &seen) { (_, pps, seconds) throws(LanesError) in
            let loss = pps <= (seconds >= 5 ? 400_000 : 500_000) ? 0.0 : 0.01
            if seconds >= 5 { long.append((pps, loss)) }
            return loss
        }
        #expect(long.first.map { $0.1 > 0 } == true, "the first verification (near 500 kpps) fails: \(long)")
        #expect(r.pps <= 400_000 && r.pps > 396_000, "NDR \(r.pps)")
        #expect(long.contains { $0.0 == r.pps && $0.1 == 0 }, "NDR \(r.pps) passed no 5 s trial: \(long)")
        #expect(r.upper > 400_000 && r.upper - r.pps <= 0.01 * r.upper)
    }

    /// Short trials that lose by stalls well below the device's rate (1 s trials
    /// lose above 350 kpps, 5 s trials only above 500 kpps): the bisection stops
    /// near 350 kpps and its verification passes, but 1.1x that loses in none of
    /// three 5 s trials, so the NDR rises, the search runs again above it with 5 s
    /// trials, and the result is within precision below 500 kpps with 1.1x it lost.
    @Test func aStallInShortTrialsDoesNotHoldTheNDRDown() throws {
        var seen: [RFC2544Search.Seen] = []
        let model: RFC2544Search.Trial = { (_, pps, seconds) throws(LanesError) in pps <= (seconds >= 5 ? 500_000 : 350_000) ? 0 : 0.001 }
        let r = try RFC2544Search.rate(ratio: 0, from: 0, to: 1_000_000, precision: 0.01, trialSeconds: 1, verifySeconds: 5, seen: &seen, trial: model)
        #expect(r.pps <= 350_000 && r.pps > 340_000, "the short trials hold the search near 350 kpps: \(r.pps)")
        let c = try RFC2544Search.confirm(ndr: r.pps, upper: r.upper, maximum: 1_000_000, precision: 0.01, verifySeconds: 5, seen: &seen, trial: model)
        #expect(c.ndr <= 500_000 && c.ndr >= 495_000 && !c.generatorBound, "NDR \(c.ndr)")
        #expect(c.upper.map { $0 > 500_000 && $0 - c.ndr <= 0.01 * $0 } == true, "upper \(String(describing: c.upper))")
        let above = try #require(c.above)
        #expect(above.lost && abs(above.pps - 1.1 * c.ndr) < 1e-6 && above.raisedFrom == [r.pps], "\(above)")
        #expect(seen.contains { $0.pps == c.ndr && $0.seconds >= 5 && $0.loss == 0 }, "NDR \(c.ndr) passed no 5 s trial")
        // A device whose NDR was right: one trial at 1.1x, lost, nothing raised.
        var trials = 0
        let d = Self.device(400_000)
        let k = try RFC2544Search.confirm(ndr: 398_000, upper: 401_000, maximum: 1_000_000, precision: 0.01, verifySeconds: 5, seen: &seen) { (_, pps, _) throws(LanesError) in trials += 1; return d(pps) }
        #expect(trials == 1 && k.ndr == 398_000 && k.upper == 401_000 && k.above?.raisedFrom == [])
        // One clean in long trials up to the generator's maximum: generator-bound there.
        let g = try RFC2544Search.confirm(ndr: 950_000, upper: 960_000, maximum: 1_000_000, precision: 0.01, verifySeconds: 5, seen: &seen) { (_, _, _) throws(LanesError) in 0 }
        #expect(g.generatorBound && g.ndr == 1_000_000 && g.upper == nil)
    }

    /// A device that always loses 1%: no NDR ("none", 0), and the search stops below 1 kpps.
    @Test func aDeviceThatAlwaysLosesHasNoNDR() throws {
        var seen: [RFC2544Search.Seen] = []
        var trials = 0
        let r = try RFC2544Search.rate(ratio: 0, from: 0, to: 1_000_000, precision: 0.005, trialSeconds: 1, verifySeconds: 5, seen: &seen) { (_, _, _) throws(LanesError) in
            trials += 1
            return 0.01
        }
        #expect(r.pps == 0 && trials < 15)
        // Its PDR at 2% is found from the floor up.
        let p = try RFC2544Search.rate(ratio: 0.02, from: 0, to: 1_000_000, precision: 0.005, trialSeconds: 1, verifySeconds: 5, seen: &seen) { (_, pps, _) throws(LanesError) in
            pps <= 600_000 ? 0.01 : 0.05
        }
        #expect(p.pps <= 600_000 && p.pps >= 597_000)
    }

    /// 26.3: every step from 100% down to 10%, loss growing with the load above the capacity.
    @Test func frameLossCoversEveryStep() throws {
        let model = Self.device(650_000)
        var asked: [Double] = []
        let steps = try RFC2544Search.frameLoss(maximum: 1_000_000, step: 0.1) { (pps) throws(LanesError) in asked.append(pps); return model(pps) }
        #expect(steps.map(\.fraction).map { ($0 * 10).rounded() } == [10, 9, 8, 7, 6, 5, 4, 3, 2, 1])
        #expect(steps[0].loss > steps[1].loss && steps[3].loss > 0 && steps[4...].allSatisfy { $0.loss == 0 })
        #expect(abs(asked[3] - 700_000) < 1 && abs(asked[9] - 100_000) < 1)
        #expect(try RFC2544Search.frameLoss(maximum: 1e6, step: 0.25) { (_) throws(LanesError) in 0 }.map(\.fraction) == [1, 0.75, 0.5, 0.25])
    }

    /// 26.4: a device with a 256-frame buffer draining at 300 kpps, fed bursts at
    /// 1.6 Mpps, keeps N frames while N x (1 - 300/1600) <= 256: N <= 315.
    @Test func backToBackFindsTheBufferAndRFC9004Corrects() throws {
        let (burst, drain, buffer) = (1_600_000.0, 300_000.0, 256.0)
        var bursts = 0
        let b = try RFC2544Search.backToBack(longest: 3_200_000, precision: 0.005) { (n) throws(LanesError) in
            bursts += 1
            return Double(n) * (1 - drain / burst) <= buffer
        }
        #expect(!b.generatorBound && b.frames >= 313 && b.frames <= 315, "\(b.frames)")
        #expect(bursts < 20)
        let t = RFC2544Search.bufferTimes(meanFrames: Double(b.frames), burstPps: burst, throughputPps: drain)
        #expect(abs(t.implied - Double(b.frames) / burst) < 1e-12)
        // The corrected time is the buffer's 256 frames at the burst rate.
        #expect(abs(t.corrected! * burst - buffer) < 2, "corrected \(t.corrected!) s = \(t.corrected! * burst) frames")
        // A device that keeps up with the generator: the longest burst is clean, generator-bound.
        let g = try RFC2544Search.backToBack(longest: 100_000, precision: 0.005) { (_) throws(LanesError) in true }
        #expect(g.generatorBound && g.frames == 100_000)
        // One that loses even one frame: 0.
        let z = try RFC2544Search.backToBack(longest: 100_000, precision: 0.005) { (_) throws(LanesError) in false }
        #expect(!z.generatorBound && z.frames == 0)
    }

    /// The PDR starts above the NDR at the highest rate no trial saw lose more than
    /// the ratio, and below any rate that lost more in a long trial: a short clean
    /// trial at a rate whose verification failed is no start.
    @Test func pdrBracketSkipsRatesThatFailedALongTrial() {
        let seen = [RFC2544Search.Seen(pps: 1_000_000, loss: 0.5, seconds: 1), .init(pps: 300_000, loss: 0, seconds: 1), .init(pps: 300_000, loss: 0.013, seconds: 5),
                    .init(pps: 280_000, loss: 0.004, seconds: 1), .init(pps: 290_000, loss: 0.04, seconds: 1), .init(pps: 260_000, loss: 0, seconds: 5)]
        let b = RFC2544Search.bracket(for: 0.005, from: seen, verifySeconds: 5, floor: 260_000, maximum: 1_000_000)
        #expect(b.lo == 280_000 && b.hi == 290_000, "\(b)")
        #expect(RFC2544Search.bracket(for: 0.005, from: [.init(pps: 1e6, loss: 0.5, seconds: 1)], verifySeconds: 5, floor: 1000, maximum: 1e6) == (1000, 1e6))
    }

    @Test func sizesAndTestsParse() throws {
        #expect(RFC2544Frame.parseList("64,1518,imix") == [.bytes(64), .bytes(1518), .imix])
        #expect(RFC2544Frame.parseList("63") == nil && RFC2544Frame.parseList("64,") == nil && RFC2544Frame.parseList("banana") == nil)
        #expect(abs(RFC2544Frame.imix.meanBytes - (7 * 64 + 4 * 570 + 1518) / 12.0) < 1e-9)
        #expect(RFC2544Test.parseList("latency,throughput") == [.throughput, .latency])
        #expect(RFC2544Test.parseList("all") == RFC2544Test.allCases && RFC2544Test.parseList("speed") == nil)
    }
}
