import Foundation
import Testing

extension IntegrationTests {
    @Suite(.serialized) struct Generator {
        @Test(arguments: ["xsk", "xdp"]) func countDeliversExactlyToAnXDPSink(tx: String) throws {
            try withTestbed(queues: 2) { tb in
                if tx == "xdp", try LiveFrames.checkedRefusal(tb) { return }
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
                if tx == "xdp", try LiveFrames.checkedRefusal(tb) { return }
                let gen = try lanes("gen", "--testbed", tb.name, "--tx", tx, "--rate", "50kpps", "--duration", "5", "--flows", "8", "--interval", "0", "--json", timeout: 60)
                try #require(gen.status == 0, "\(gen.stderr)")
                let g = try gen.json()
                #expect(g["tx_path"] as? String == tx)
                let sent = try #require(g["tx_packets"] as? Int)
                #expect(abs(Double(sent) - 250_000) / 250_000 < 0.02, "sent \(sent) packets in 5 s at 50 kpps")
                #expect(g["requested_pps"] as? Double == 50000)
                // A count at a rate: the reported rate is over the sending span, not start-up and drain.
                let c = try lanes("gen", "--testbed", tb.name, "--tx", tx, "--rate", "50kpps", "--count", "100000", "--interval", "0", "--json", timeout: 60)
                try #require(c.status == 0, "\(c.stderr)")
                let j = try c.json()
                #expect(j["tx_packets"] as? Int == 100000)
                let pps = try #require(j["tx_pps"] as? Double)
                // Paced runs land within 0.05% here; what is left is a scheduler stall of the
                // sending thread in the last milliseconds (the pacer repays a debt only while
                // frames remain): one of 14 ms was seen on this 2-vCPU VM. 1% is 20 ms, the span's
                // own bound below; start-up and drain in the span would be 5% or more.
                #expect(abs(pps - 50000) / 50000 < 0.01, "--count 100000 --rate 50kpps reported \(pps) pps")
                let span = try #require(j["sending_s"] as? Double)
                #expect(abs(span - 2.0) < 0.02 && span < (j["duration_s"] as? Double ?? 0), "sending_s \(span)")
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
                // A stall on this shared VM can lose frames at a veth (a fill ring run dry):
                // those are counted there, and the loss must be the impairment's plus them.
                let veth = try tb.vethRxDrops(tb.dut, "d0") + tb.vethRxDrops(tb.gen, "g0")
                let laneDrops = (impair["drops"] as? [String: Int] ?? [:]).filter { $0.key != "drop_app" }.values.reduce(0, +)
                let extra = veth + laneDrops
                #expect(g["lost"] as? Int == dropped + extra, "veth drops \(veth), forwarder drops \(laneDrops)")
                if extra == 0 { #expect(g["reordered"] as? Int == swapped) } else { #expect((g["reordered"] as? Int ?? .max) <= swapped) }
                #expect(g["duplicates"] as? Int == 0)
                #expect(g["rx_packets"] as? Int == 20000 - dropped - extra)
            }
        }

        /// Live frames: a million packets, counted exactly by the XDP sink, each queue's
        /// count equal to what its lane sent (on veth the sending core picks the queue).
        @Test func liveFramesMillionAreCountedExactlyPerQueue() throws {
            try withTestbed(queues: 2) { tb in
                if try LiveFrames.checkedRefusal(tb) { return }
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
                #expect(try gen.json()["tx_path"] as? String == LiveFrames.autoPath)
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

        /// Receivers track streams by the id in the signature, whatever their own --flows:
        /// 8 flows from 2 lanes into a receiver left at its default, then 64 flows into one
        /// told of 48 (the other 16 reported as unexpected) and one told of 70 (6 missing).
        /// Each time rx_packets is every packet sent, the per-stream table sums to it, 0 lost.
        @Test(arguments: ["xdp", "xsk"]) func receiversReportEveryStreamTheySee(rx: String) throws {
            try withTestbed(queues: 2) { tb in
                for (flows, told, count) in [(8, nil, 40000), (64, 48, 64000), (64, 70, 64000)] as [(Int, Int?, Int)] {
                    let receiver = try Running(["gen", "d0", "--netns", tb.dut, "--rx-only", "--rx", rx, "--duration", "4",
                                                "--interval", "0", "--json"] + (told.map { ["--flows", "\($0)"] } ?? []))
                    try tb.waitForXDP(tb.dut, "d0")
                    let gen = try lanes("gen", "--testbed", tb.name, "--flows", "\(flows)", "--count", "\(count)", "--rate", "\(testRate(40000))pps",
                                        "--interval", "0", "--json", timeout: 60)
                    try #require(gen.status == 0, "\(gen.stderr)")
                    let g = try gen.json()
                    #expect(g["tx_packets"] as? Int == count)
                    #expect((g["lanes"] as? [[String: Any]])?.filter { ($0["tx_packets"] as? Int ?? 0) > 0 }.count == 2, "the sender runs on 2 lanes")
                    let r = receiver.wait(timeout: 30)
                    try #require(r.status == 0, "\(r.stderr)")
                    let j = try r.json()
                    let streams = try #require(j["streams"] as? [[String: Any]])
                    #expect(j["rx_packets"] as? Int == count, "\(flows) flows into a receiver told of \(told.map(String.init) ?? "none")")
                    #expect(j["lost"] as? Int == 0)
                    #expect(j["untracked"] as? Int == 0)
                    #expect(streams.reduce(0) { $0 + ($1["received"] as? Int ?? 0) + ($1["duplicates"] as? Int ?? 0) } == count)
                    let seen = streams.filter { ($0["received"] as? Int ?? 0) > 0 }
                    #expect(seen.count == flows)
                    #expect(Set(seen.compactMap { $0["stream"] as? Int }) == Set(0..<flows))
                    #expect(Set(seen.compactMap { $0["queue"] as? Int }) == [0, 1], "streams arrive on both queues")
                    #expect(seen.allSatisfy { ($0["flow"] as? String ?? "").hasPrefix("udp 198.18.0.1:") }, "the flow as it arrived")
                    let unexpected = streams.filter { $0["unexpected"] as? Bool == true }.compactMap { $0["stream"] as? Int }
                    #expect(unexpected == (told.map { Array($0..<max($0, flows)) } ?? []))
                    #expect(j["unexpected_streams"] as? Int == unexpected.count)
                    #expect(j["missing_streams"] as? [Int] == (told.map { Array(flows..<max($0, flows)) } ?? []))
                    #expect(j["expected_streams"] as? Int == told)
                }
                #expect(try !tb.xdpAttached(tb.dut, "d0"), "the receiver left its program on d0")
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
                #expect(g["tx_path"] as? String == LiveFrames.autoPath)
                // Where the kernel refuses live frames, auto says so; else why it took them.
                #expect((g["tx_path_reason"] as? String ?? "").contains(LiveFrames.refusal.map { _ in "live frames" } ?? "copy mode"), "reason: \(g["tx_path_reason"] ?? "none")")
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
                // A frame over a page: --tx xdp refuses in one line; auto falls back to xsk
                // (the ports' MTU first lets a 3600-byte frame out: gen refuses one past it).
                let atMTU1500 = try run(["gen", "--testbed", tb.name, "--size", "3600", "--count", "10"])
                #expect(atMTU1500.status != 0 && atMTU1500.stderr.contains("MTU of 1500"), "\(atMTU1500.stderr)")
                _ = try ip("-n", tb.gen, "link", "set", "g0", "mtu", "3586")
                _ = try ip("-n", tb.dut, "link", "set", "d0", "mtu", "3586")
                let big = ["gen", "--testbed", tb.name, "--frame-size", "4096", "--size", "3600", "--count", "10", "--interval", "0", "--json"]
                let refused = try run(big + ["--tx", "xdp"])
                #expect(refused.status != 0 && refused.stderr.contains("does not fit a live frame"), "\(refused.stderr)")
                let fallback = try run(big)
                try #require(fallback.status == 0, "\(fallback.stderr)")
                #expect(try fallback.json()["tx_path"] as? String == "xsk")
                #expect((try fallback.json()["tx_path_reason"] as? String ?? "").contains("does not fit a live frame"))
            }
        }

        /// Every family x VLAN x size path, on both transmit paths, goes out with valid
        /// checksums and the sizes asked for (IPv6's IMIX raises 64 to its 78-byte minimum),
        /// as `lanes decode` and tshark both read it on d0. A size that cannot hold IPv6 is
        /// refused in one line naming the option and the minimum. tcpdump runs in
        /// immediate mode: otherwise libpcap holds the last packets in a part-filled
        /// block for up to its 1 s timeout, and SIGINT ends it before it reads them
        /// ("received by filter" 576, "captured" 552).
        @Test func everyFamilyVLANAndSizeGoesOutValid() throws {
            try withTestbed(queues: 1) { tb in
                let pcap = FileManager.default.temporaryDirectory.appendingPathComponent("lanes-sizes-\(getpid()).pcap").path
                defer { try? FileManager.default.removeItem(atPath: pcap) }
                let dump = try Running(["ip", "netns", "exec", tb.dut, "tcpdump", "-i", "d0", "-Q", "in", "-U", "--immediate-mode", "-w", pcap, "udp or (vlan and udp)"], tool: "/usr/bin/env")
                usleep(1_000_000)
                var expected = 0
                var sizesSeen: [String: Set<Int>] = [:]
                for tx in LiveFrames.txPaths {
                    for v6 in [false, true] {
                        for vlan in [nil, "7"] as [String?] {
                            for sizes in [[], ["--size", "128,1000"], ["--imix"]] {
                                var args = ["gen", "--testbed", tb.name, "--tx", tx, "--count", "12", "--rate", "20kpps", "--interval", "0", "--json"] + sizes
                                if v6 { args.append("--ipv6") }
                                if let vlan { args += ["--vlan", vlan] }
                                let g = try run(args)
                                try #require(g.status == 0, "\(args): \(g.stderr)")
                                #expect(try g.json()["tx_path"] as? String == tx)
                                expected += 12
                            }
                        }
                    }
                }
                usleep(500_000)
                dump.signal(SIGINT)
                dump.wait()
                let d = try lanes("decode", pcap, "--json")
                try #require(d.status == 0, "\(d.stderr)")
                let packets = d.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                #expect(packets.count == expected, "captured \(packets.count) of \(expected)")
                for (i, p) in packets.enumerated() {
                    let layers = p["layers"] as? [String] ?? []
                    #expect(layers.contains("udp"), "packet \(i + 1): \(layers)")
                    #expect(p["l4_checksum_valid"] as? Bool == true, "packet \(i + 1): UDP checksum")
                    if layers.contains("ipv4") { #expect(p["ip_checksum_valid"] as? Bool == true, "packet \(i + 1): IPv4 checksum") }
                    let key = (layers.contains("ipv6") ? "v6" : "v4") + (layers.contains("vlan") ? "+vlan" : "")
                    sizesSeen[key, default: []].insert(p["captured_length"] as? Int ?? 0)
                }
                #expect(sizesSeen["v4"] == [64, 128, 570, 1000, 1518])
                #expect(sizesSeen["v6"] == [78, 128, 570, 1000, 1518])
                #expect(sizesSeen["v4+vlan"] == [64, 128, 570, 1000, 1518])
                #expect(sizesSeen["v6+vlan"] == [82, 128, 570, 1000, 1518])
                let ts = try run(["tshark", "-r", pcap, "-o", "udp.check_checksum:TRUE", "-o", "ip.check_checksum:TRUE",
                                  "-T", "fields", "-e", "udp.checksum.status", "-e", "ip.checksum.status"], tool: "/usr/bin/env")
                try #require(ts.status == 0, "\(ts.stderr)")
                let rows = ts.stdout.split(separator: "\n")
                #expect(rows.count == expected)
                for r in rows {
                    let f = r.split(separator: "\t", omittingEmptySubsequences: false)
                    #expect(f.first == "1", "tshark: UDP checksum status \(r)")
                    if f.count > 1 && !f[1].isEmpty { #expect(f[1] == "1", "tshark: IPv4 checksum status \(r)") }
                }
                let small = try lanes("gen", "--testbed", tb.name, "--ipv6", "--size", "64", "--count", "1")
                #expect(small.status != 0 && small.stderr.contains("--size") && small.stderr.contains("IPv6 minimum of 78"), "\(small.stderr)")
                #expect(small.stderr.split(separator: "\n").count == 1)
            }
        }

        /// Values out of range and options that cannot go together: one line naming them.
        @Test func conflictsAndRangesAreOneLineErrors() throws {
            try withTestbed(queues: 1) { tb in
                let cases: [([String], [String])] = [
                    (["gen", "--testbed", tb.name, "--vlan", "5000", "--count", "1"], ["--vlan", "1-4094"]),
                    (["gen", "--testbed", tb.name, "--imix", "--size", "64", "--count", "1"], ["--size", "--imix"]),
                    (["gen", "--testbed", tb.name, "--flows", "6", "--src-port", "1", "--src-ip", "198.18.0.1-198.18.0.2", "--count", "1"], ["--flows 6", "2 distinct"]),
                    (["scale", "--ec2", "default", "--flow-cap", "1Gbps"], ["--flow-cap", "--ec2"]),
                    (["fwd", "--testbed", tb.name, "--mode", "macswap", "--pipeline"], ["--pipeline", "macswap"]),
                    // A word after a flag that takes no value names the flag, not an interface.
                    (["gen", "--imix", "banana", "--count", "10"], ["--imix takes no value", "'banana'", "--imix-mix 64:7,570:4,1518:1"]),
                    (["gen", "--testbed", tb.name, "--ipv6", "g0", "--count", "1"], ["--ipv6 takes no value", "lanes gen g0 --ipv6"]),
                    (["drop", "--json", "d0"], ["--json takes no value", "lanes drop d0 --json"]),
                    (["replay", "--topspeed", "trace.pcap"], ["--topspeed takes no value", "lanes replay trace.pcap --topspeed"]),
                    (["fwd", "--bidirectional", "d0", "d1"], ["--bidirectional takes no value", "'d0'"]),
                    // Where no flag precedes it, the word is the interface.
                    (["gen", "banana", "--imix", "--count", "10"], ["interface 'banana' not found"]),
                    (["gen", "--count", "10", "banana", "--imix"], ["interface 'banana' not found"]),
                ]
                for (args, words) in cases {
                    let o = try run(args)
                    #expect(o.status != 0, "\(args) was accepted")
                    for w in words { #expect(o.stderr.contains(w), "\(args): \(o.stderr)") }
                    #expect(o.stderr.split(separator: "\n").count == 1, "\(args): \(o.stderr)")
                }
                let flowsFile = FileManager.default.temporaryDirectory.appendingPathComponent("lanes-flows-\(getpid()).txt").path
                try "198.18.0.1 198.18.1.1 1000 9000\n".write(toFile: flowsFile, atomically: true, encoding: .utf8)
                defer { try? FileManager.default.removeItem(atPath: flowsFile) }
                let both = try lanes("gen", "--testbed", tb.name, "--flows", "2", "--flows-file", flowsFile, "--count", "1")
                #expect(both.status != 0 && both.stderr.contains("--flows-file"), "\(both.stderr)")
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
