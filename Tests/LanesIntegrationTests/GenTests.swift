import Foundation
import Testing

extension IntegrationTests {
    @Suite(.serialized) struct Generator {
        @Test func countDeliversExactlyToAnXDPSink() throws {
            try withTestbed(queues: 2) { tb in
                let sink = try Running(["sink", "d0", "--netns", tb.dut, "--filter", "udp dport 9000", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                let gen = try lanes("gen", "--testbed", tb.name, "--count", "100000", "--flows", "16", "--interval", "0", "--json", timeout: 60)
                try #require(gen.status == 0, "\(gen.stderr)")
                usleep(300_000)
                sink.signal(SIGINT)
                let s = sink.wait()
                let g = try gen.json()
                #expect(g["tx_packets"] as? Int == 100000)
                #expect(g["exit_reason"] as? String == "count reached")
                #expect(g["frames_balanced"] as? Bool == true)
                #expect(try s.json()["packets"] as? Int == 100000)
            }
        }

        @Test func rateIsAccurateAt50kppsOver5s() throws {
            try withTestbed(queues: 2) { tb in
                let gen = try lanes("gen", "--testbed", tb.name, "--rate", "50kpps", "--duration", "5", "--flows", "8", "--interval", "0", "--json", timeout: 60)
                try #require(gen.status == 0, "\(gen.stderr)")
                let g = try gen.json()
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
