import Foundation
import Testing

extension IntegrationTests {
    @Suite(.serialized) struct Generator {
        @Test(arguments: ["xsk", "xdp"]) func countDeliversExactlyToAnXDPSink(tx: String) throws {
            try withTestbed(queues: 2) { tb in
                let sink = try Running(["sink", "d0", "--netns", tb.dut, "--filter", "udp dport 9000", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                let gen = try lanes("gen", "--testbed", tb.name, "--tx", tx, "--count", "100000", "--flows", "16", "--interval", "0", "--json", timeout: 60)
                try #require(gen.status == 0, "\(gen.stderr)")
                usleep(300_000)
                sink.signal(SIGINT)
                let s = sink.wait()
                let g = try gen.json()
                #expect(g["tx_path"] as? String == tx)
                #expect(g["tx_packets"] as? Int == 100000)
                #expect(g["exit_reason"] as? String == "count reached")
                #expect(g["frames_balanced"] as? Bool == true)
                #expect(try s.json()["packets"] as? Int == 100000)
            }
        }

        @Test(arguments: ["xsk", "xdp"]) func rateIsAccurateAt50kppsOver5s(tx: String) throws {
            try withTestbed(queues: 2) { tb in
                let gen = try lanes("gen", "--testbed", tb.name, "--tx", tx, "--rate", "50kpps", "--duration", "5", "--flows", "8", "--interval", "0", "--json", timeout: 60)
                try #require(gen.status == 0, "\(gen.stderr)")
                let g = try gen.json()
                #expect(g["tx_path"] as? String == tx)
                let sent = try #require(g["tx_packets"] as? Int)
                #expect(abs(Double(sent) - 250_000) / 250_000 < 0.02, "sent \(sent) packets in 5 s at 50 kpps")
                #expect(g["requested_pps"] as? Double == 50000)
            }
        }

        @Test func rssFlowsLandOnEveryQueueAsPlanned() throws {
            try withTestbed(queues: 4) { tb in
                let sink = try Running(["sink", "d0", "--netns", tb.dut, "--filter", "udp dport 9000", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                let gen = try lanes("gen", "--testbed", tb.name, "--flows", "64", "--rss", "--count", "6400", "--interval", "0", "--json", timeout: 60)
                try #require(gen.status == 0, "\(gen.stderr)")
                usleep(300_000)
                sink.signal(SIGINT)
                let s = try sink.wait().json()
                let g = try gen.json()
                let lanes = try #require(g["lanes"] as? [[String: Any]])
                #expect(lanes.count == 4)
                for l in lanes { #expect(l["streams"] as? Int == 16, "queue \(l["queue"] ?? "?") got \(l["streams"] ?? "?") flows") }
                let perQueue = try #require(s["queues"] as? [[String: Any]])
                for q in perQueue {
                    let queue = q["queue"] as! Int
                    let sent = lanes.first { $0["queue"] as? Int == queue }?["tx_packets"] as? Int
                    #expect(q["packets"] as? Int == 1600, "queue \(queue)")
                    #expect(q["packets"] as? Int == sent, "queue \(queue): sink counted what its lane sent")
                }
            }
        }

        @Test func lossAndReorderAreDetectedThroughAnImpairedForwarder() throws {
            try withTestbed(queues: 2) { tb in
                let fwd = try Running(["fwd", "--netns", tb.dut, "d0", "--mode", "macswap", "--impair", "drop=100,reorder=7",
                                       "--filter", "udp dport 9000", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                let gen = try lanes("gen", "--testbed", tb.name, "--rx", "--count", "20000", "--rate", "100kpps", "--queues", "0",
                                    "--interval", "0", "--json", timeout: 60)
                try #require(gen.status == 0, "\(gen.stderr)")
                fwd.signal(SIGINT)
                let f = fwd.wait()
                try #require(f.status == 0, "\(f.stderr)")
                let impair = try f.json()
                let g = try gen.json()
                let dropped = try #require(impair["impair_dropped"] as? Int)
                let swapped = try #require(impair["impair_swapped"] as? Int)
                #expect(dropped == 200)
                #expect(swapped > 0, "the forwarder swapped nothing: bursts too small")
                #expect(g["lost"] as? Int == dropped)
                #expect(g["reordered"] as? Int == swapped)
                #expect(g["duplicates"] as? Int == 0)
                #expect(g["rx_packets"] as? Int == 20000 - dropped)
            }
        }

        /// Live frames: a million packets, counted exactly by the XDP sink, each queue's
        /// count equal to what its lane sent (on veth the sending core picks the queue).
        @Test func liveFramesMillionAreCountedExactlyPerQueue() throws {
            try withTestbed(queues: 2) { tb in
                let sink = try Running(["sink", "d0", "--netns", tb.dut, "--filter", "udp dport 9000", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                let gen = try lanes("gen", "--testbed", tb.name, "--tx", "xdp", "--rss", "--flows", "16", "--count", "1000000",
                                    "--interval", "0", "--json", timeout: 60)
                try #require(gen.status == 0, "\(gen.stderr)")
                usleep(300_000)
                sink.signal(SIGINT)
                let s = try sink.wait().json()
                let g = try gen.json()
                #expect(g["tx_packets"] as? Int == 1_000_000)
                #expect(s["packets"] as? Int == 1_000_000)
                let lanes = try #require(g["lanes"] as? [[String: Any]])
                #expect(lanes.count == 2)
                for l in lanes { #expect(l["streams"] as? Int == 8, "queue \(l["queue"] ?? "?") got \(l["streams"] ?? "?") flows") }
                let perQueue = try #require(s["queues"] as? [[String: Any]])
                #expect(perQueue.count == 2)
                for q in perQueue {
                    let queue = q["queue"] as! Int
                    let sent = lanes.first { $0["queue"] as? Int == queue }?["tx_packets"] as? Int
                    #expect(q["packets"] as? Int == sent, "queue \(queue): the sink counted what its lane sent")
                }
                #expect(try !tb.xdpAttached(tb.gen, "g0"), "gen left its program on g0")
            }
        }

        /// The XDP receiver and the AF_XDP receiver each report exactly the impaired
        /// forwarder's drops and swaps (gen -> fwd io d0->d1 -> receiver on s0).
        @Test(arguments: ["xdp", "xsk"]) func receiversCountAnImpairedForwardersDropsAndSwaps(rx: String) throws {
            try withTestbed(queues: 2) { tb in
                let fwd = try Running(["fwd", "--netns", tb.dut, "d0", "d1", "--mode", "io", "--impair", "drop=100,reorder=7", "--queues", "0",
                                       "--filter", "udp dport 9000", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                let receiver = try Running(["gen", "s0", "--netns", tb.sink, "--rx-only", "--rx", rx, "--flows", "1", "--duration", "6",
                                            "--interval", "0", "--json"])
                try tb.waitForXDP(tb.sink, "s0")
                // 20050: the last 50 pass the forwarder, so the 200th drop is not the tail.
                let gen = try lanes("gen", "--testbed", tb.name, "--count", "20050", "--rate", "100kpps", "--queues", "0",
                                    "--interval", "0", "--json", timeout: 60)
                try #require(gen.status == 0, "\(gen.stderr)")
                let r = receiver.wait(timeout: 20)
                fwd.signal(SIGINT)
                let f = fwd.wait()
                try #require(f.status == 0, "\(f.stderr)")
                try #require(r.status == 0, "\(r.stderr)")
                let impair = try f.json(), g = try r.json()
                let dropped = try #require(impair["impair_dropped"] as? Int)
                let swapped = try #require(impair["impair_swapped"] as? Int)
                #expect(dropped == 200)
                #expect(swapped > 0, "the forwarder swapped nothing: bursts too small")
                #expect(try gen.json()["tx_path"] as? String == "xdp")
                #expect(g["rx_path"] as? String == rx)
                #expect(g["rx_packets"] as? Int == 20050 - dropped)
                #expect(g["lost"] as? Int == dropped)
                #expect(g["reordered"] as? Int == swapped)
                #expect(g["duplicates"] as? Int == 0)
                let lat = try #require(g["latency"] as? [String: Any])
                let values = ["min_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"].map { lat[$0] as? Int ?? -1 }
                #expect(values == values.sorted(), "not monotone: \(values)")
                #expect(values[0] > 1_000, "min latency \(values[0]) ns is below what a veth hop can do")
                #expect(lat["count"] as? Int == 20050 - dropped)
                #expect(try !tb.xdpAttached(tb.sink, "s0"), "the receiver left its program on s0")
            }
        }

        /// On the testbed gen picks live frames by itself and says why; paths that cannot
        /// combine give one line naming both; SIGINT ends an unpaced run within a second.
        @Test func autoPicksLiveFramesAndStopsOnSIGINT() throws {
            try withTestbed(queues: 2) { tb in
                let sink = try Running(["sink", "d0", "--netns", tb.dut, "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                let gen = try Running(["gen", "--testbed", tb.name, "--flows", "4", "--interval", "0", "--json"])
                usleep(1_500_000)
                let t0 = Date()
                gen.signal(SIGINT)
                let o = gen.wait(timeout: 10)
                let took = Date().timeIntervalSince(t0)
                sink.signal(SIGINT)
                sink.wait()
                try #require(o.status == 0, "\(o.stderr)")
                let g = try o.json()
                #expect(g["tx_path"] as? String == "xdp")
                #expect((g["tx_path_reason"] as? String ?? "").contains("copy mode"), "reason: \(g["tx_path_reason"] ?? "none")")
                #expect(g["exit_reason"] as? String == "SIGINT")
                #expect(took < 1.0, "SIGINT took \(took) s")
                #expect((g["tx_packets"] as? Int ?? 0) > 100_000)
                #expect(try !tb.xdpAttached(tb.gen, "g0"))
                let both = try lanes("gen", "--testbed", tb.name, "--tx", "xdp", "--rx", "--count", "10")
                #expect(both.status != 0)
                #expect(both.stderr.contains("--tx xdp") && both.stderr.contains("--rx"), "\(both.stderr)")
                #expect(both.stderr.split(separator: "\n").count == 1, "\(both.stderr)")
                let auto = try lanes("gen", "--testbed", tb.name, "--rx", "--count", "10", "--interval", "0", "--json")
                #expect(try auto.json()["tx_path"] as? String == "xsk", "--rx receives on the sending port's AF_XDP lanes")
                // A frame over a page: --tx xdp refuses in one line; auto falls back to xsk.
                let big = ["gen", "--testbed", tb.name, "--frame-size", "4096", "--size", "3600", "--count", "10", "--interval", "0", "--json"]
                let refused = try run(big + ["--tx", "xdp"])
                #expect(refused.status != 0 && refused.stderr.contains("does not fit a live frame"), "\(refused.stderr)")
                let fallback = try run(big)
                try #require(fallback.status == 0, "\(fallback.stderr)")
                #expect(try fallback.json()["tx_path"] as? String == "xsk")
                #expect((try fallback.json()["tx_path_reason"] as? String ?? "").contains("does not fit a live frame"))
            }
        }

        @Test func latencyPercentilesAreMonotoneAndPlausible() throws {
            try withTestbed(queues: 2) { tb in
                let fwd = try Running(["fwd", "--netns", tb.dut, "d0", "--mode", "macswap", "--filter", "udp dport 9000", "--interval", "0"])
                try tb.waitForXDP(tb.dut, "d0")
                let gen = try lanes("gen", "--testbed", tb.name, "--rx", "--flows", "4", "--rss", "--rate", "20kpps", "--duration", "2",
                                    "--interval", "0", "--json", timeout: 60)
                fwd.signal(SIGINT)
                fwd.wait()
                try #require(gen.status == 0, "\(gen.stderr)")
                let g = try gen.json()
                let lat = try #require(g["latency"] as? [String: Any])
                let values = ["min_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"].map { lat[$0] as? Int ?? -1 }
                #expect(values == values.sorted(), "not monotone: \(values)")
                #expect(values[0] > 1_000, "min latency \(values[0]) ns is below what a veth round trip can do")
                #expect(values[1] < 100_000_000, "median latency \(values[1]) ns is not plausible")
                #expect(lat["count"] as? Int == g["rx_packets"] as? Int)
                #expect(g["lost"] as? Int == 0)
            }
        }
    }
}
