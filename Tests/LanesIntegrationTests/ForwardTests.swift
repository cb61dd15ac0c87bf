import Foundation
import LanesPacket
import Testing

extension IntegrationTests {
    @Suite(.serialized) struct Forwarder {
        /// gen -> d0 -> lanes fwd l3 -> d1 -> s0, captured with tcpdump on s0 and parsed there.
        /// On both paths: the lanes (xsk) and the XDP program forwarding (xdp).
        @Test(arguments: ["xsk", "xdp"]) func l3ForwardsEveryPacketWithRewrittenHeaders(path: String) throws {
            try withTestbed(queues: 2) { tb in
                let k = 2000
                let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lanes-fwd-\(getpid())-\(path)")
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(at: dir) }
                let pcap = dir.appendingPathComponent("s0.pcap").path
                let dump = try Running(["netns", "exec", tb.sink, "tcpdump", "-i", "s0", "-n", "-U", "-w", pcap, "-c", "\(k)", "udp dst port 9000"], tool: "/usr/sbin/ip")
                usleep(1_000_000)
                let fwd = try Running(["fwd", "--testbed", tb.name, "--mode", "l3", "--path", path, "--filter", "udp dport 9000", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                let gen = try lanes("gen", "--testbed", tb.name, "--count", "\(k)", "--flows", "16", "--rss", "--rate", "20kpps", "--interval", "0", "--json")
                try #require(gen.status == 0, "\(gen.stderr)")
                let d = dump.wait(timeout: 20)
                fwd.signal(SIGINT)
                let f = fwd.wait()
                try #require(f.status == 0, "\(f.stderr)")
                let s = try f.json()
                #expect(s["tx_packets"] as? Int == k)
                #expect(s["path"] as? String == path)
                #expect(s["frames_balanced"] as? Bool == true)
                #expect(d.status == 0, "tcpdump: \(d.stderr)")
                let decoded = try lanes("decode", pcap, "--json")
                try #require(decoded.status == 0, "\(decoded.stderr)")
                let pkts = decoded.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                #expect(pkts.count == k)
                var wrong = 0
                for p in pkts {
                    let ok = p["eth_src"] as? String == "02:4c:00:00:01:02" && p["eth_dst"] as? String == "02:4c:00:00:01:01"
                        && p["ttl"] as? Int == 63 && p["ip_checksum_valid"] as? Bool == true && p["l4_checksum_valid"] as? Bool == true
                        && p["ip_dst"] as? String == "198.18.1.1" && p["malformed"] as? Bool == false
                    if !ok { wrong += 1 }
                }
                #expect(wrong == 0, "\(wrong) packets arrived with wrong headers; first: \(pkts.first ?? [:])")
            }
        }

        /// `--routes kernel`: the dut namespace's own FIB, looked up in XDP: connected
        /// routes to s0 and routes added with `ip route add ... via` s0, IPv4 and
        /// IPv6, every packet at s0 and every one forwarded by the lanes.
        @Test func l3ForwardsByTheKernelsRoutes() throws {
            try withTestbed(queues: 1) { tb in
                _ = try ip("-n", tb.dut, "route", "add", "198.18.50.0/24", "via", "198.18.1.1", "dev", "d1")
                _ = try ip("-n", tb.dut, "-6", "route", "add", "fd00:198:18:50::/64", "via", "fd00:198:18:1::1", "dev", "d1")
                let sink = try Running(["sink", "--testbed", tb.name, "--interval", "0", "--json"])
                try tb.waitForXDP(tb.sink, "s0")
                let fwd = try Running(["fwd", "--testbed", tb.name, "--mode", "l3", "--routes", "kernel", "--filter", "udp dport 9000", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                for extra in [[], ["--dst-ip", "198.18.50.7"], ["--ipv6"], ["--ipv6", "--dst-ip", "fd00:198:18:50::7"]] {
                    let g = try run(["gen", "--testbed", tb.name, "--count", "1000", "--rate", "20kpps", "--interval", "0"] + extra)
                    try #require(g.status == 0, "\(g.stderr)")
                }
                usleep(300_000)
                fwd.signal(SIGINT)
                sink.signal(SIGINT)
                let f = fwd.wait(), s = sink.wait()
                try #require(f.status == 0, "\(f.stderr)")
                #expect(f.stderr.contains("the kernel's FIB, one bpf_fib_lookup per packet"), "\(f.stderr)")
                #expect(try f.json()["tx_packets"] as? Int == 4000)
                #expect(try s.json()["packets"] as? Int == 4000)
            }
        }

        /// `ip route replace` (or `ip neigh replace` of the gateway) mid-run: the
        /// next packet's lookup in XDP sees it while the lane forwards, and the packets
        /// move to the new next hop (told apart by destination MAC in s0's capture)
        /// at one point of the stream, within 100 ms of the change; every packet
        /// sent was captured or counted by cause.
        @Test(arguments: ["route", "neighbour"], ["xsk", "xdp"]) func l3FollowsARouteReplaceMidRun(change: String, path: String) throws {
            try withTestbed(queues: 1) { tb in
                let newHop = "02:4c:00:00:09:09"
                _ = try ip("-n", tb.dut, "neigh", "add", "198.18.1.9", "lladdr", newHop, "dev", "d1", "nud", "permanent")
                _ = try ip("-n", tb.dut, "route", "add", "198.18.50.0/24", "via", "198.18.1.1", "dev", "d1")
                let pcap = FileManager.default.temporaryDirectory.appendingPathComponent("lanes-replace-\(getpid())-\(change)-\(path).pcap").path
                defer { try? FileManager.default.removeItem(atPath: pcap) }
                let k = 20000
                let dump = try Running(["netns", "exec", tb.sink, "tcpdump", "-i", "s0", "-n", "-U", "-w", pcap, "-c", "\(k)", "udp dst port 9000"], tool: "/usr/sbin/ip")
                usleep(1_000_000)
                let fwd = try Running(["fwd", "--testbed", tb.name, "--mode", "l3", "--path", path, "--routes", "kernel", "--filter", "udp dport 9000", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                let gen = try Running(["gen", "--testbed", tb.name, "--tx", "xsk", "--dst-ip", "198.18.50.7", "--count", "\(k)", "--rate", "10kpps", "--interval", "0", "--json"])
                usleep(1_000_000)
                let changed = Date().timeIntervalSince1970
                if change == "route" {
                    _ = try ip("-n", tb.dut, "route", "replace", "198.18.50.0/24", "via", "198.18.1.9", "dev", "d1")
                } else {
                    // The gateway's link-layer address changes (a failover to another box on the same IP).
                    _ = try ip("-n", tb.dut, "neigh", "replace", "198.18.1.1", "lladdr", newHop, "dev", "d1", "nud", "permanent")
                }
                let g = gen.wait(timeout: 30)
                try #require(g.status == 0, "\(g.stderr)")
                let d = dump.wait(timeout: 10)
                fwd.signal(SIGINT)
                let f = fwd.wait()
                try #require(f.status == 0, "\(f.stderr)")
                let fj = try f.json()
                let drops = (fj["drops"] as? [String: Int] ?? [:]).values.reduce(0, +)
                let records = try Pcap.read(Array(try Data(contentsOf: URL(fileURLWithPath: pcap))))
                #expect(d.status == 0 || records.count + drops == k, "tcpdump: \(d.stderr)")
                #expect(records.count + drops == k, "sent \(k) = captured \(records.count) + dropped \(drops) (\(fj["drops"] ?? ""))")
                let s0 = [UInt8](arrayLiteral: 0x02, 0x4c, 0, 0, 1, 1), hop: [UInt8] = [0x02, 0x4c, 0, 0, 9, 9]
                let macs = records.map { Array($0.data.prefix(6)) }
                let firstNew = try #require(macs.firstIndex(of: hop), "no packet reached the new next hop")
                #expect(firstNew > 0 && macs[..<firstNew].allSatisfy { $0 == s0 } && macs[firstNew...].allSatisfy { $0 == hop },
                        "packets must move once, at one point of the stream")
                let lag = Double(records[firstNew].timestampNanos) / 1e9 - changed
                #expect(lag < 0.1, "the first packet to the new next hop came \(lag) s after the change")
            }
        }

        /// No static neighbour in the dut: the XDP program's FIB lookup passes the
        /// first packets to s0 to the kernel, which forwards them and resolves s0 by
        /// ARP; the lookups then find the neighbour and the lanes take the rest. Every packet reaches s0 or is counted by cause.
        @Test func anUnresolvedNeighbourIsResolvedAndTheLanesTakeOver() throws {
            try withTestbed(queues: 1) { tb in
                _ = try ip("-n", tb.dut, "neigh", "del", "198.18.1.1", "dev", "d1")
                let sink = try Running(["sink", "--testbed", tb.name, "--interval", "0", "--json"])
                try tb.waitForXDP(tb.sink, "s0")
                let fwd = try Running(["fwd", "--testbed", tb.name, "--mode", "l3", "--routes", "kernel", "--filter", "udp dport 9000", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                let k = 5000
                let g = try lanes("gen", "--testbed", tb.name, "--tx", "xsk", "--count", "\(k)", "--rate", "10kpps", "--interval", "0")
                try #require(g.status == 0, "\(g.stderr)")
                usleep(500_000)
                fwd.signal(SIGINT)
                sink.signal(SIGINT)
                let f = fwd.wait(), s = sink.wait()
                try #require(f.status == 0, "\(f.stderr)")
                let fj = try f.json(), sj = try s.json()
                let lane = try #require((fj["lanes"] as? [[String: Any]])?.first)
                let unresolved = (lane["xdp"] as? [String: Any])?["unresolved"] as? Int ?? -1
                let tx = fj["tx_packets"] as? Int ?? -1
                let drops = (fj["drops"] as? [String: Int] ?? [:]).values.reduce(0, +)
                #expect(unresolved > 0, "the kernel forwarded the first packets: \(lane)")
                #expect(tx > 0, "the lanes took over once the neighbour resolved: \(f.stderr)")
                #expect(unresolved + tx + drops == k, "passed \(unresolved) + forwarded \(tx) + dropped \(drops) != \(k)")
                #expect(sj["packets"] as? Int == unresolved + tx, "s0 counted \(sj["packets"] ?? "?")")
                let neigh = try ip("-n", tb.dut, "neigh", "show", "198.18.1.1", "dev", "d1")
                #expect(neigh.stdout.contains("02:4c:00:00:01:01"), "the kernel resolved s0: \(neigh.stdout)")
            }
        }

        /// No route for the destination: by the kernel's FIB the packets go to the
        /// kernel (which answers net unreachable), counted as not forwarded; by a
        /// route file they are dropped and counted as no route.
        @Test(arguments: ["xsk", "xdp"]) func l3CountsUnroutedPacketsByCause(path: String) throws {
            try withTestbed(queues: 2) { tb in
                let file = FileManager.default.temporaryDirectory.appendingPathComponent("lanes-routes-\(getpid()).txt").path
                try "198.18.1.0/24 02:4c:00:00:01:01\n".write(toFile: file, atomically: true, encoding: .utf8)
                defer { try? FileManager.default.removeItem(atPath: file) }
                for routes in ["kernel", file] {
                    let fwd = try Running(["fwd", "--testbed", tb.name, "--mode", "l3", "--path", path, "--routes", routes, "--filter", "udp dport 9000", "--interval", "0", "--json"])
                    try tb.waitForXDP(tb.dut, "d0")
                    let gen = try lanes("gen", "--testbed", tb.name, "--count", "3000", "--dst-ip", "198.18.77.1", "--rate", "30kpps", "--interval", "0")
                    try #require(gen.status == 0, "\(gen.stderr)")
                    usleep(300_000)
                    fwd.signal(SIGINT)
                    let f = fwd.wait()
                    try #require(f.status == 0, "\(f.stderr)")
                    let s = try f.json()
                    if routes == "kernel" {
                        #expect((s["xdp"] as? [String: Any])?["not_forwarded"] as? Int == 3000, "\(s["xdp"] ?? "")")
                    } else {
                        #expect((s["drops"] as? [String: Any])?["drop_no_route"] as? Int == 3000)
                    }
                    #expect(s["tx_packets"] as? Int == 0)
                }
            }
        }

        /// l2 both ways: gen:g0 -> s0 and sink:s0 -> g0 through one lanes fwd --bidirectional.
        @Test(arguments: ["xsk", "xdp"]) func bidirectionalL2ForwardsBothWays(path: String) throws {
            try withTestbed(queues: 2) { tb in
                let sinkS = try Running(["sink", "--testbed", tb.name, "--filter", "udp dport 9000", "--interval", "0", "--json"])
                let sinkG = try Running(["sink", "g0", "--netns", tb.gen, "--filter", "udp dport 9100", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.sink, "s0")
                try tb.waitForXDP(tb.gen, "g0")
                let fwd = try Running(["fwd", "--testbed", tb.name, "--mode", "l2", "--path", path, "--bidirectional", "--filter", "udp", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d1")
                let there = try lanes("gen", "--testbed", tb.name, "--count", "4000", "--flows", "4", "--rate", "20kpps", "--interval", "0")
                let back = try lanes("gen", "s0", "--netns", tb.sink, "--dst-mac", "02:4c:00:00:01:02", "--src-ip", "198.18.1.1", "--dst-ip", "198.18.0.1",
                                     "--dst-port", "9100", "--count", "3000", "--flows", "4", "--rate", "20kpps", "--interval", "0")
                #expect(there.status == 0 && back.status == 0, "\(there.stderr) \(back.stderr)")
                usleep(300_000)
                fwd.signal(SIGINT); sinkS.signal(SIGINT); sinkG.signal(SIGINT)
                let f = fwd.wait()
                try #require(f.status == 0, "\(f.stderr)")
                let fj = try f.json()
                #expect(fj["frames_balanced"] as? Bool == true)
                let dirs = (fj["lanes"] as? [[String: Any]] ?? []).compactMap { $0["direction"] as? String }
                #expect(Set(dirs) == ["d0->d1", "d1->d0"])
                #expect(fj["path"] as? String == path)
                #expect(fj["tx_packets"] as? Int == 7000, "forwarded \(fj["tx_packets"] ?? "?") of 7000")
                #expect(try sinkS.wait().json()["packets"] as? Int == 4000)
                #expect(try sinkG.wait().json()["packets"] as? Int == 3000)
            }
        }
    }
}

extension IntegrationTests.Forwarder {
    /// --pipeline: one RX lane spreads flows over two workers; each flow keeps its order.
    @Test func pipelineSpreadsFlowsAndKeepsOrderWithinEach() throws {
        try withTestbed(queues: 2) { tb in
            for flows in [1, 16] {
                let fwd = try Running(["fwd", "--testbed", tb.name, "--mode", "io", "--pipeline", "--workers", "0,1", "--queues", "0",
                                       "--filter", "udp dport 9000", "--interval", "0", "--json"])
                let rx = try Running(["gen", "s0", "--netns", tb.sink, "--rx-only", "--flows", "\(flows)", "--dst-mac", "02:4c:00:00:01:02",
                                      "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                try tb.waitForXDP(tb.sink, "s0")
                let gen = try lanes("gen", "--testbed", tb.name, "--queues", "0", "--flows", "\(flows)", "--count", "20000", "--rate", "\(testRate(40000))pps",
                                    "--interval", "0", "--json", timeout: 120)
                try #require(gen.status == 0, "\(gen.stderr)")
                usleep(500_000)
                fwd.signal(SIGINT)
                rx.signal(SIGINT)
                let f = fwd.wait(), r = rx.wait()
                try #require(f.status == 0 && r.status == 0, "\(f.stderr) \(r.stderr)")
                let fj = try f.json(), rj = try r.json()
                let laneList = try #require(fj["lanes"] as? [[String: Any]])
                let workerTx = laneList.dropFirst().map { $0["tx_packets"] as? Int ?? -1 }
                #expect(workerTx.reduce(0, +) == 20000, "the workers, not the kernel, forwarded: \(workerTx)")
                if flows == 1 {
                    #expect(workerTx.filter { $0 > 0 }.count == 1, "one flow must stay on one worker: \(workerTx)")
                } else {
                    #expect(workerTx.allSatisfy { $0 > 0 }, "many flows must reach every worker: \(workerTx)")
                }
                #expect(rj["rx_packets"] as? Int == 20000)
                #expect(rj["reordered"] as? Int == 0, "order broken within a flow")
                #expect(rj["lost"] as? Int == 0)
                #expect(fj["frames_balanced"] as? Bool == true)
            }
        }
    }
}

extension IntegrationTests.Forwarder {
    /// --pipeline takes --metrics (the RX lane and each worker a lane, promtool finds
    /// the text clean) and --latency, like the engine's lanes.
    @Test func pipelineServesMetricsAndTakesLatency() throws {
        try withTestbed(queues: 2) { tb in
            let port = 19400 + Int(getpid() % 500)
            let fwd = try Running(["fwd", "--testbed", tb.name, "--mode", "io", "--pipeline", "--workers", "0,1", "--queues", "0", "--latency",
                                   "--filter", "udp dport 9000", "--metrics", "127.0.0.1:\(port)", "--interval", "0", "--json"])
            try tb.waitForXDP(tb.dut, "d0")
            let gen = try lanes("gen", "--testbed", tb.name, "--queues", "0", "--flows", "16", "--count", "4000", "--rate", "\(testRate(20000))pps",
                                "--interval", "0", timeout: 60)
            try #require(gen.status == 0, "\(gen.stderr)")
            usleep(500_000)
            let scrape = try MetricsScrape(tb.dut, port: port)
            fwd.signal(SIGINT)
            let f = fwd.wait()
            try #require(f.status == 0, "\(f.stderr)")
            try #require(scrape.output.status == 0, "curl: \(scrape.output.stderr)")
            #expect(f.stderr.contains("serving metrics at"), "\(f.stderr)")
            let rx = scrape.samples("lanes_rx_packets_total"), tx = scrape.samples("lanes_tx_packets_total")
            #expect(rx.count == 3 && tx.count == 3, "the RX lane and two workers: \(rx) \(tx)")
            #expect(rx.first { $0.line.contains("interface=\"d0\"") }?.value == 4000, "\(rx)")
            #expect(tx.filter { $0.line.contains("interface=\"d1\"") }.map(\.value).reduce(0, +) == 4000, "\(tx)")
            let check = try scrape.promtool()
            #expect(check.status == 0, "promtool: \(check.stdout) \(check.stderr)")
        }
    }
}
