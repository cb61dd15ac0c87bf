import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

extension IntegrationTests {
    @Suite(.serialized) struct RFC2544 {
        static func result(_ o: Output) throws -> [String: Any] {
            try #require(o.status == 0, "\(o.stderr)")
            return try #require(try JSONSerialization.jsonObject(with: Data(o.stdout.utf8)) as? [String: Any])
        }

        /// Through Linux forwarding and through `lanes fwd`: a short search finds an
        /// NDR that a 5 s trial at that rate loses nothing at, while 1.1x it loses
        /// frames in a 5 s trial (of at most three: a no-drop rate loses in none, and one
        /// that loses in none is a higher NDR, searched again above); NDR <= PDR <= the generator's maximum; every trial
        /// (each progress line) is in the JSON; latency at half the NDR; the testbed is gone.
        @Test(arguments: ["kernel", "lanes"])
        func shortSearchFindsANDRThatHolds5sWhile1_1xLoses(dut: String) throws {
            try LiveFrames.premise { try shortSearch(dut: dut) }
        }

        func shortSearch(dut: String) throws {
            let name = "lr\(dut.prefix(1))\(getpid() % 10000)"
            let o = try lanes("rfc2544", "--dut", dut, "--tests", "throughput,latency", "--sizes", "64", "--flows", "1", "--trial-duration", "0.3",
                              "--verify-duration", "5", "--precision", "5%", "--latency-at", "0.5", "--testbed", name, "--json", timeout: 400)
            let r = try Self.result(o)
            let p = try #require((r["points"] as? [[String: Any]])?.first)
            let ndr = try #require(p["ndr"] as? [String: Any]), pdr = try #require(p["pdr"] as? [String: Any])
            let max = try #require(p["generator_max_pps"] as? Double)
            let ndrPps = try #require(ndr["pps"] as? Double), pdrPps = try #require(pdr["pps"] as? Double)
            #expect(ndrPps > 0 && ndrPps <= pdrPps && pdrPps <= max * 1.0001, "ndr \(ndrPps) pdr \(pdrPps) max \(max)")
            try #require(ndr["generator_bound"] as? Bool == false, "\(dut) was generator-bound at \(max) pps: no NDR to check")
            let trials = try #require(r["trials"] as? [[String: Any]])
            let progress = o.stderr.split(separator: "\n").filter { $0.hasPrefix("[") }
            #expect(trials.count == progress.count && trials.count > 5, "\(trials.count) trials in the JSON, \(progress.count) run")
            #expect(Set(trials.compactMap { $0["kind"] as? String }).isSuperset(of: ["max", "search", "above", "latency"]))
            // The NDR passed a trial of 5 s; 1.1x it lost in one.
            let atNDR = trials.filter { abs(($0["requested_pps"] as? Double ?? -1) - ndrPps) < 1 && ($0["seconds"] as? Double ?? 0) >= 5 }
            #expect(atNDR.contains { $0["loss_ratio"] as? Double == 0 }, "NDR \(ndrPps) has no clean 5 s trial: \(atNDR)")
            let above = try #require(p["above"] as? [String: Any])
            #expect(abs((above["pps"] as? Double ?? 0) - 1.1 * ndrPps) < 2 || (above["pps"] as? Double) == max)
            // An NDR that 1.1x did not beat in three 5 s trials was raised (RFC2544Search.confirm), so the last 1.1x lost.
            #expect((above["loss_ratios"] as? [Double] ?? []).contains { $0 > 0 }, "1.1x NDR (\(above)) lost nothing in three 5 s trials")
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
            let o = try lanes("rfc2544", "--dut", "lanes", "--impair", "drop=100", "--tests", "throughput", "--sizes", "64", "--flows", "1", "--trial-duration", "0.3",
                              "--verify-duration", "0.6", "--precision", "10%", "--pdr", "2%", "--testbed", name, "--json", timeout: 300)
            let r = try Self.result(o)
            let p = try #require((r["points"] as? [[String: Any]])?.first)
            let ndr = try #require(p["ndr"] as? [String: Any]), pdr = try #require(p["pdr"] as? [String: Any])
            #expect(ndr["pps"] as? Double == 0 && ndr["generator_bound"] as? Bool == false, "NDR \(ndr)")
            #expect((pdr["pps"] as? Double ?? 0) > 0, "PDR \(pdr)")
            let trials = r["trials"] as? [[String: Any]] ?? []
            #expect(trials.allSatisfy { ($0["loss_ratio"] as? Double ?? 0) > 0 }, "the impaired device loses at every rate")
            #expect(try !ip("netns", "list").stdout.contains(name))
        }

        /// Frame loss and back-to-back through Linux forwarding, with IMIX: loss at
        /// the maximum, then every step down by 25% to 25%; the
        /// longest lossless burst is about what veth's 256-frame receive ring and
        /// the forwarding during the burst hold, a burst of that length lost
        /// nothing and a longer one lost; report, JSON and a well-formed SVG written.
        @Test func frameLossAndBackToBackThroughLinuxForwarding() throws {
            try LiveFrames.premise { try frameLossAndBackToBack() }
        }

        func frameLossAndBackToBack() throws {
            let name = "lb\(getpid() % 100000)"
            let out = FileManager.default.temporaryDirectory.appendingPathComponent("lanes-2544-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: out) }
            let o = try lanes("rfc2544", "--dut", "kernel", "--tests", "loss,back-to-back", "--sizes", "64,imix", "--flows", "1", "--trial-duration", "0.3",
                              "--loss-step", "25%", "--b2b-duration", "0.2", "--b2b-searches", "1", "--precision", "5%", "--testbed", name, "--out", out.path, timeout: 400)
            #expect(o.status == 0, "\(o.stderr)")
            let r = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: out.appendingPathComponent("results.json"))) as? [String: Any])
            let points = try #require(r["points"] as? [[String: Any]])
            #expect(points.map { "\($0["size"] ?? "")" } == ["64", "imix"])
            let trials = try #require(r["trials"] as? [[String: Any]])
            for p in points {
                let steps = try #require(p["frame_loss"] as? [[String: Any]])
                let fractions = steps.compactMap { $0["fraction"] as? Double }
                #expect(fractions == [1, 0.75, 0.5, 0.25], "\(fractions)")
                #expect((steps.first?["loss_ratio"] as? Double ?? 0) > 0, "Linux forwarding lost nothing at the generator's maximum: \(steps)")
                let b = try #require(p["back_to_back"] as? [String: Any])
                let frames = try #require((b["frames"] as? [Int])?.first)
                #expect(b["generator_bound"] as? Bool == false && frames >= 128 && frames <= 4096, "back-to-back \(b)")
                let bursts = trials.filter { $0["kind"] as? String == "burst" && "\($0["size"] ?? "")" == "\(p["size"] ?? "")" }
                #expect(bursts.contains { $0["burst_frames"] as? Int == frames && $0["loss_ratio"] as? Double == 0 })
                #expect(bursts.contains { ($0["burst_frames"] as? Int ?? 0) > frames && ($0["loss_ratio"] as? Double ?? 0) > 0 })
                #expect((b["implied_buffer_seconds"] as? Double ?? 0) > 0 && b["corrected_buffer_seconds"] == nil, "no NDR was measured: no correction")
            }
            let report = try String(contentsOf: out.appendingPathComponent("report.md"), encoding: .utf8)
            #expect(report.contains("## Frame loss rate") && report.contains("## Back-to-back") && !report.contains("## Throughput"))
            let svg = try Data(contentsOf: out.appendingPathComponent("plot.svg"))
            let parser = XMLParser(data: svg)
            #expect(parser.parse(), "plot.svg is not well-formed XML: \(parser.parserError.map { "\($0)" } ?? "")")
            #expect(String(decoding: svg, as: UTF8.self).contains("loss %"))
            #expect(try !ip("netns", "list").stdout.contains(name))
        }

        /// `--dut external` on ports the user set up (a testbed made by hand, Linux
        /// forwarding in its dut): it runs there, and leaves the ports as it found
        /// them; `--dut none` measures the plain veth.
        @Test func externalPortsAndThePlainPath() throws {
            let name = "le\(getpid() % 100000)"
            try #require(try lanes("testbed", "up", "--name", name, "--queues", "2").status == 0)
            defer { _ = try? lanes("testbed", "down", "--name", name) }
            let o = try lanes("rfc2544", "--dut", "external", "--tx-port", "g0", "--tx-netns", "\(name)-gen", "--rx-port", "s0", "--rx-netns", "\(name)-sink",
                              "--dst-mac", "02:4c:00:00:00:02", "--tests", "throughput", "--sizes", "128", "--flows", "4", "--trial-duration", "0.3",
                              "--verify-duration", "0.6", "--precision", "10%", "--json", timeout: 300)
            let r = try Self.result(o)
            #expect((r["path"] as? String ?? "").contains("\(name)-gen:g0") && r["dut"] as? String == "external device")
            let p = try #require((r["points"] as? [[String: Any]])?.first)
            #expect(((p["ndr"] as? [String: Any])?["pps"] as? Double ?? 0) > 0, "\(p)")
            #expect((p["generator_max_pps"] as? Double ?? 0) > 10_000)
            #expect(try ip("netns", "list").stdout.contains("\(name)-dut"), "rfc2544 --dut external removed the user's namespaces")
            for (ns, port) in [("\(name)-gen", "g0"), ("\(name)-sink", "s0")] {
                #expect(try !ip("-n", ns, "link", "show", port).stdout.contains("prog/xdp"), "\(ns):\(port) was left with an XDP program")
            }
            let n = try lanes("rfc2544", "--dut", "none", "--tests", "throughput", "--sizes", "64", "--flows", "1", "--trial-duration", "0.3",
                              "--verify-duration", "0.6", "--precision", "10%", "--testbed", "\(name)n", "--json", timeout: 300)
            let rn = try Self.result(n)
            #expect((rn["path"] as? String ?? "").contains("dut:d0 (plain veth"))
            #expect(((rn["points"] as? [[String: Any]])?.first?["generator_max_pps"] as? Double ?? 0) > 100_000)
            #expect(try !ip("netns", "list").stdout.contains("\(name)n-"))
        }

        @Test func badParametersAreOneLineErrors() throws {
            for (args, word) in [(["--dut", "teleport"], "--dut"), (["--sizes", "20"], "--sizes"), (["--sizes", "64,jumbo"], "--sizes"), (["--precision", "x"], "--precision"),
                                 (["--pdr", "200%"], "--pdr"), (["--impair", "drop=100", "--dut", "kernel"], "--impair"), (["--latency-at", "2"], "--latency-at"),
                                 (["--flows", "0"], "--flows"), (["--tests", "speed"], "--tests"), (["--tests", "latency"], "latency needs throughput"),
                                 (["--loss-step", "0"], "--loss-step"), (["--b2b-searches", "0"], "--b2b"),
                                 (["--dut", "external"], "--tx-port"), (["--dut", "external", "--tx-port", "lo", "--rx-port", "lo"], "--dst-mac"),
                                 (["--dut", "external", "--tx-port", "nosuch0", "--rx-port", "lo", "--dst-mac", "02:00:00:00:00:01"], "nosuch0"),
                                 (["--dut", "external", "--tx-port", "lo", "--rx-port", "lo", "--dst-mac", "02:00:00:00:00:01"], "same port"),
                                 (["--tx-port", "lo"], "--tx-port and --dut lanes conflict")] {
                let o = try run(["rfc2544"] + args)
                #expect(o.status != 0 && o.stderr.contains(word) && o.stderr.split(separator: "\n").count == 1, "\(args): \(o.stderr)")
            }
        }
    }
}
