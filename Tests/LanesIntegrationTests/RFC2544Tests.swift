import Foundation
import Testing

extension IntegrationTests {
    @Suite(.serialized) struct RFC2544 {
        /// A short search through Linux forwarding: NDR <= PDR <= the generator's
        /// maximum, the NDR verified by a trial that lost nothing, every trial in the
        /// JSON, latency at half the NDR, and the testbed gone.
        @Test func shortSearchFindsAVerifiedNDRAndKeepsEveryTrial() throws {
            let name = "lr\(getpid() % 100000)"
            let o = try lanes("rfc2544", "--dut", "kernel", "--sizes", "64", "--flows", "1", "--trial-duration", "0.3", "--verify-duration", "0.6",
                              "--precision", "10%", "--latency-at", "0.5", "--testbed", name, "--json", timeout: 300)
            try #require(o.status == 0, "\(o.stderr)")
            let r = try #require(try JSONSerialization.jsonObject(with: Data(o.stdout.utf8)) as? [String: Any])
            let points = try #require(r["points"] as? [[String: Any]])
            try #require(points.count == 1)
            let p = points[0]
            let ndr = try #require(p["ndr"] as? [String: Any]), pdr = try #require(p["pdr"] as? [String: Any])
            let max = try #require(p["generator_max_pps"] as? Double)
            let ndrPps = try #require(ndr["pps"] as? Double), pdrPps = try #require(pdr["pps"] as? Double)
            #expect(ndrPps > 0 && ndrPps <= pdrPps && pdrPps <= max * 1.0001, "ndr \(ndrPps) pdr \(pdrPps) max \(max)")
            let trials = try #require(r["trials"] as? [[String: Any]])
            let kinds = Set(trials.compactMap { $0["kind"] as? String })
            #expect(kinds.isSuperset(of: ["max", "search", "latency"]), "\(kinds)")
            if ndr["generator_bound"] as? Bool != true {
                // The reported NDR is a rate some trial ran at and lost nothing at, the verification among them.
                let clean = trials.filter { ($0["requested_pps"] as? Double).map { abs($0 - ndrPps) < 1 } ?? false && ($0["loss_ratio"] as? Double) == 0 }
                #expect(clean.contains { $0["kind"] as? String == "verify" }, "NDR \(ndrPps) has no clean verification: \(trials)")
                // Above the bracket's top a trial lost frames.
                let upper = try #require(ndr["upper_pps"] as? Double)
                #expect(trials.contains { ($0["requested_pps"] as? Double ?? 0) >= upper - 1 && ($0["loss_ratio"] as? Double ?? 0) > 0 })
            }
            for t in trials {
                #expect((t["tx_packets"] as? Int ?? 0) > 0 && (t["rx_packets"] as? Int ?? -1) <= (t["tx_packets"] as? Int ?? 0), "\(t)")
            }
            let latency = try #require((p["latency"] as? [String: Any])?["0.5"] as? [String: Any])
            #expect((latency["p50_ns"] as? Int ?? 0) > 0)
            #expect(try !ip("netns", "list").stdout.contains(name), "rfc2544 left its testbed behind")
        }

        /// A device that drops a fixed 1% has no NDR, and a PDR of 2% is found.
        @Test func aDeviceLosingOnePercentHasNoNDRButAPDR() throws {
            let name = "li\(getpid() % 100000)"
            let o = try lanes("rfc2544", "--dut", "lanes", "--impair", "drop=100", "--sizes", "64", "--flows", "1", "--trial-duration", "0.3",
                              "--verify-duration", "0.6", "--precision", "10%", "--pdr", "2%", "--latency-at", "0.5", "--testbed", name, "--json", timeout: 300)
            try #require(o.status == 0, "\(o.stderr)")
            let r = try #require(try JSONSerialization.jsonObject(with: Data(o.stdout.utf8)) as? [String: Any])
            let p = try #require((r["points"] as? [[String: Any]])?.first)
            let ndr = try #require(p["ndr"] as? [String: Any]), pdr = try #require(p["pdr"] as? [String: Any])
            #expect(ndr["pps"] as? Double == 0 && ndr["generator_bound"] as? Bool == false, "NDR \(ndr)")
            #expect((pdr["pps"] as? Double ?? 0) > 0, "PDR \(pdr)")
            let trials = r["trials"] as? [[String: Any]] ?? []
            #expect(trials.allSatisfy { ($0["loss_ratio"] as? Double ?? 0) > 0 }, "the impaired device loses at every rate")
            #expect(try !ip("netns", "list").stdout.contains(name))
        }

        @Test func badParametersAreOneLineErrors() throws {
            for (args, word) in [(["--dut", "teleport"], "--dut"), (["--sizes", "20"], "--sizes"), (["--precision", "x"], "--precision"),
                                 (["--pdr", "200%"], "--pdr"), (["--impair", "drop=100", "--dut", "kernel"], "--impair"), (["--latency-at", "2"], "--latency-at"), (["--flows", "0"], "--flows")] {
                let o = try run(["rfc2544"] + args)
                #expect(o.status != 0 && o.stderr.contains(word) && o.stderr.split(separator: "\n").count == 1, "\(args): \(o.stderr)")
            }
        }
    }
}
