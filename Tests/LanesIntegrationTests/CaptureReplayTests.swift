import Foundation
import LanesPacket
import Testing

extension IntegrationTests {
    /// `lanes replay` and `lanes capture` on the testbed, with a capture made here by scapy.
    @Suite(.serialized) struct CaptureReplay {
        /// Writes a mixed capture with scapy: UDP and TCP with options over several
        /// flows, VLAN-tagged UDP, IPv6 with hop-by-hop and destination-options
        /// headers, IPv4 fragments of one datagram, ICMP echo, ICMPv6 and odd
        /// sizes, `gapUs` apart, `rounds` times over. Source MACs 02:5a:..., so the
        /// replayed packets are told from what the testbed's kernels send.
        /// Payload sizes are random, from a new seed every run: a capture the project never saw.
        static func makeTrace(_ path: String, rounds: Int = 20, gapUs: Int = 200) throws {
            let script = """
            import random, sys
            from scapy.all import Ether, Dot1Q, IP, IPv6, UDP, TCP, ICMP, ICMPv6EchoRequest, IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt, Raw, fragment, wrpcap
            seed = random.randrange(1 << 30)
            random.seed(seed)
            print(seed)
            def eth(i): return Ether(src="02:5a:00:00:00:%02x" % (i % 200), dst="02:4c:00:00:00:02")
            pkts = []
            for r in range(\(rounds)):
                for f in range(6):
                    pkts.append(eth(f)/IP(src="198.18.0.%d" % (10 + f), dst="198.18.1.1")/UDP(sport=2000 + f, dport=9000)/Raw(bytes([r % 256, f]) * random.randint(1, 700)))
                pkts.append(eth(7)/IP(src="198.18.0.20", dst="198.18.1.1")/TCP(sport=40000, dport=443, seq=1000 + r, flags="PA", options=[("MSS", 1460), ("SAckOK", b""), ("Timestamp", (r, 0)), ("WScale", 7), ("NOP", None)])/Raw(b"t" * (r + 1)))
                pkts.append(eth(8)/Dot1Q(vlan=100 + r % 3)/IP(src="198.18.0.30", dst="198.18.1.1")/UDP(sport=3000, dport=9001)/Raw(bytes([r]) * (17 + r)))
                pkts.append(eth(9)/IPv6(src="fd00:198:18::%x" % (10 + r % 2), dst="fd00:198:18:1::1")/IPv6ExtHdrHopByHop()/IPv6ExtHdrDestOpt()/UDP(sport=5000, dport=9000)/Raw(bytes([r]) * (r * 7 + 1)))
                pkts.append(eth(10)/IPv6(src="fd00:198:18::20", dst="fd00:198:18:1::1")/ICMPv6EchoRequest(id=7, seq=r))
                pkts.append(eth(11)/IP(src="198.18.0.40", dst="198.18.1.1")/ICMP(id=9, seq=r)/Raw(b"p" * (r % 5)))
                for frag in fragment(eth(12)/IP(src="198.18.0.50", dst="198.18.1.1", id=r + 1)/UDP(sport=6000, dport=9000)/Raw(bytes([r]) * 1800), fragsize=600):
                    pkts.append(frag)
                pkts.append(eth(13)/IP(src="198.18.0.60", dst="198.18.1.1")/UDP(sport=7000, dport=9000)/Raw(b"o" * (1471 - r % 3)))
            t = 1700000000.0
            for p in pkts:
                p.time = t
                t += \(gapUs) / 1e6
            wrpcap(sys.argv[1], pkts)
            """
            // Debian's python3 (python3-scapy), not whichever python3 is first on PATH.
            let o = try run(["-c", script, path], tool: "/usr/bin/python3", timeout: 120)
            try #require(o.status == 0, "scapy: \(o.stderr)")
            seed = o.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        /// The last trace's random seed (a new capture every run), named in failures.
        nonisolated(unsafe) static var seed = ""

        /// The records of a capture that came from the trace (source MAC 02:5a:...).
        static func replayed(_ path: String) throws -> [[UInt8]] {
            let data = try #require(FileManager.default.contents(atPath: path), "no capture at \(path)")
            return try Pcap.read(Array(data)).map(\.data).filter { $0.count >= 12 && $0[6] == 0x02 && $0[7] == 0x5a }
        }

        /// A flow's name: its 5-tuple, or its addresses for fragments and ICMP, or its MACs.
        static func flow(_ d: [UInt8]) -> String {
            let r = d.withUnsafeBytes { PacketParser.parse($0) }
            if !(r.moreFragments || r.fragmentOffset != 0), let f = FlowKey(r) { return f.description }
            return d[0..<12].map { String($0) }.joined(separator: ":") + "/\(r.ipv4Src)/\(r.ipv4Dst)/\(r.ipv6Src)"
        }

        /// Same packets, byte for byte, and each flow's packets in the file's order.
        static func expectSame(_ got: [[UInt8]], _ want: [[UInt8]], _ who: String) {
            #expect(got.count == want.count, "\(who) captured \(got.count) of \(want.count) replayed packets (trace seed \(seed))")
            #expect(got.sorted { $0.lexicographicallyPrecedes($1) } == want.sorted { $0.lexicographicallyPrecedes($1) }, "\(who): not the same bytes (trace seed \(seed))")
            let byFlow = { (list: [[UInt8]]) in Dictionary(grouping: list, by: flow) }
            let g = byFlow(got), w = byFlow(want)
            for (k, packets) in w { #expect(g[k] == packets, "\(who): flow \(k) out of order or incomplete") }
        }

        /// The trace is replayed from gen:g0 through `lanes fwd --mode io` on the dut
        /// and captured at sink:s0 by tcpdump, then (replayed again) by `lanes
        /// capture` to pcap and to pcapng: each holds exactly the replayed packets,
        /// byte for byte, every flow in order.
        @Test func replayThroughFwdIsCapturedByteForByteByTcpdumpAndLanes() throws {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lanes-cr-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let trace = dir + "/trace.pcap"
            try Self.makeTrace(trace)
            let want = try Self.replayed(trace)
            try #require(want.count > 300)
            try withTestbed { tb in
                let fwd = try Running(["fwd", "--testbed", tb.name, "--mode", "io", "--filter", "ip", "--interval", "0", "--duration", "60", "--json"])
                defer { fwd.signal(SIGINT); _ = fwd.wait() }
                try tb.waitForXDP(tb.dut, "d0")
                func replay(_ extra: [String] = []) throws {
                    let r = try run(["replay", trace, "--testbed", tb.name, "--rate", "20kpps", "--json"] + extra)
                    let j = try r.json()
                    #expect(j["sent_packets"] as? Int == want.count, "\(j)")
                }
                // tcpdump at the sink.
                let dump = dir + "/tcpdump.pcap"
                let td = try Running(["ip", "netns", "exec", tb.sink, "tcpdump", "-i", "s0", "-Q", "in", "-U", "-s", "0", "-w", dump], tool: "/usr/bin/env")
                usleep(1_500_000)
                try replay()
                usleep(500_000)
                td.signal(SIGINT)
                _ = td.wait()
                Self.expectSame(try Self.replayed(dump), want, "tcpdump")
                // lanes capture at the sink, pcap then pcapng (that one of a replay with its source MAC rewritten).
                let newSource: [UInt8] = [0x02, 0x5a, 0, 0, 0, 0xee]
                for name in ["lanes.pcap", "lanes.pcapng"] {
                    let rewrite = name.hasSuffix(".pcapng")
                    let file = dir + "/" + name
                    let cap = try Running(["capture", "--testbed", tb.name, "-w", file, "--filter", "ip", "--duration", "30", "--interval", "0", "--json"])
                    try tb.waitForXDP(tb.sink, "s0")
                    try replay(rewrite ? ["--src-mac", "02:5a:00:00:00:ee"] : [])
                    usleep(500_000)
                    cap.signal(SIGINT)
                    let c = cap.wait()
                    let j = try c.json()
                    #expect(j["capture_dropped"] as? Int == 0 && (j["captured"] as? Int ?? 0) >= want.count, "\(j)")
                    Self.expectSame(try Self.replayed(file), rewrite ? want.map { Array($0[0..<6]) + newSource + Array($0[12...]) } : want, "lanes capture \(name)")
                    if name.hasSuffix(".pcapng") {
                        // tshark reads the pcapng and each packet's queue.
                        let t = try run(["tshark", "-r", file, "-T", "fields", "-e", "frame.interface_queue"], tool: "/usr/bin/env")
                        let queues = Set(t.stdout.split(separator: "\n").map(String.init))
                        #expect(t.status == 0 && !queues.isEmpty && queues.isSubset(of: ["0", "1"]), "tshark: \(t.stderr) \(queues)")
                    }
                }
                #expect(try !tb.xdpAttached(tb.sink, "s0"), "capture left its program on s0")
            }
        }

        /// A timed replay keeps the file's order across lanes, not only each flow's:
        /// the mixed trace from gen:g0 over both lanes at 1 kpps and at 20 kpps arrives at
        /// dut:d0 (tcpdump) in exactly the file's order.
        @Test(arguments: ["1000", "20kpps"]) func aTimedReplayArrivesInFileOrder(rate: String) throws {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lanes-ro-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let trace = dir + "/trace.pcap"
            try Self.makeTrace(trace, rounds: rate == "1000" ? 3 : 20)
            let want = try Self.replayed(trace)
            try withTestbed { tb in
                let dump = dir + "/d0.pcap"
                let td = try Running(["ip", "netns", "exec", tb.dut, "tcpdump", "-i", "d0", "-Q", "in", "-U", "-s", "0", "-w", dump], tool: "/usr/bin/env")
                usleep(1_500_000)
                let r = try run(["replay", trace, "--testbed", tb.name, "--rate", rate, "--json"], timeout: 60)
                try #require(r.status == 0, "\(r.stderr)")
                let j = try r.json()
                #expect(j["sent_packets"] as? Int == want.count)
                let lanes = try #require(j["lanes"] as? [[String: Any]])
                #expect(lanes.filter { ($0["packets"] as? Int ?? 0) > 0 }.count == 2, "the trace goes out over both lanes: \(lanes)")
                usleep(500_000)
                td.signal(SIGINT)
                _ = td.wait()
                let got = try Self.replayed(dump)
                #expect(got.count == want.count, "tcpdump saw \(got.count) of \(want.count) (trace seed \(Self.seed))")
                let firstOff = zip(got, want).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                let inOrder = got == want
                #expect(inOrder, "not in file order at \(rate): first difference at packet \(firstOff ?? -1) of \(want.count) (trace seed \(Self.seed))")
            }
        }

        /// Original timing: the file's span at speed 1, half of it at --speed 2
        /// (within 5%); --rate is met within 2%; --count caps the total over --loop.
        @Test func speedRateLoopAndCount() throws {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lanes-rt-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let trace = dir + "/trace.pcap"
            try Self.makeTrace(trace, rounds: 40, gapUs: 1000)
            let n = try Self.replayed(trace).count
            try withTestbed { tb in
                func replay(_ args: String...) throws -> [String: Any] {
                    try run(["replay", trace, "--testbed", tb.name, "--json"] + args, timeout: 120).json()
                }
                let one = try replay(), two = try replay("--speed", "2")
                let span = Double(n - 1) / 1000
                let s1 = try #require(one["sending_s"] as? Double), s2 = try #require(two["sending_s"] as? Double)
                #expect(abs(s1 - span) / span < 0.05, "speed 1: \(s1) s for a \(span) s file")
                #expect(abs(s2 / s1 - 0.5) < 0.025, "speed 2: \(s2) s against \(s1) s")
                let rate = try replay("--rate", "40kpps", "--loop", "100")
                #expect(rate["sent_packets"] as? Int == 100 * n)
                let pps = try #require(rate["pps"] as? Double)
                #expect(abs(pps - 40_000) / 40_000 < 0.02, "--rate 40kpps gave \(pps)")
                let capped = try replay("--topspeed", "--loop", "5", "--count", "\(2 * n + 7)")
                #expect(capped["sent_packets"] as? Int == 2 * n + 7, "\(capped)")
            }
        }

        /// Bad files and options: one line each, non-zero, and nothing attached.
        @Test func badFilesAreOneLineErrors() throws {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lanes-bad-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            // Ethernet (source 02:5a:...), IPv4, UDP to 198.18.1.1:9000, 18 bytes of payload: 60 bytes.
            let good: [UInt8] = [2, 0x4c, 0, 0, 0, 2, 2, 0x5a, 0, 0, 0, 1, 8, 0,
                                 0x45, 0, 0, 46, 0, 1, 0, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 1, 1,
                                 0x07, 0xd0, 0x23, 0x28, 0, 26, 0, 0] + [UInt8](repeating: 0x61, count: 18)
            func write(_ name: String, _ bytes: [UInt8]) -> String {
                let p = dir + "/" + name
                _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
                return p
            }
            var truncated = Pcap.write([PcapRecord(timestampNanos: 0, data: good), PcapRecord(timestampNanos: 1, data: good)])
            truncated.removeLast(5)
            let files = [
                ("missing", dir + "/nope.pcap", "no such file"),
                ("garbage", write("g.pcap", Array("hello, this is not a capture".utf8)), "not a pcap"),
                ("empty", write("e.pcap", Pcap.write([])), "no packet"),
                ("truncated", write("t.pcap", truncated), "1 truncated"),
                ("snaplen", write("s.pcap", Pcap.write([PcapRecord(timestampNanos: 0, originalLength: 200, data: good)])), "snaplen"),
                ("jumbo", write("j.pcap", Pcap.write([PcapRecord(timestampNanos: 0, data: good + [UInt8](repeating: 0, count: 1600))])), "over the"),
            ]
            try withTestbed { tb in
                for (what, path, says) in files {
                    let o = try lanes("replay", path, "--testbed", tb.name)
                    let lines = o.stderr.split(separator: "\n")
                    #expect(o.status != 0 && lines.count <= 2 && o.stderr.contains(says), "\(what): status \(o.status), stderr \(o.stderr)")
                }
                // --skip-bad sends the good record of the truncated file.
                let s = try lanes("replay", dir + "/t.pcap", "--testbed", tb.name, "--skip-bad", "--json").json()
                #expect(s["sent_packets"] as? Int == 1 && (s["skipped"] as? [String: Int])?["truncated"] == 1, "\(s)")
                for args in [["--speed", "0"], ["--rate", "fast"], ["--speed", "2", "--topspeed"], ["--loop", "0"], ["--dst-mac", "zz"]] {
                    let o = try run(["replay", dir + "/t.pcap", "--testbed", tb.name] + args)
                    #expect(o.status != 0 && o.stderr.split(separator: "\n").count <= 2, "\(args): \(o.stderr)")
                }
                let unwritable = try lanes("capture", "--testbed", tb.name, "-w", "/proc/lanes-capture.pcap", "--duration", "1")
                #expect(unwritable.status != 0 && unwritable.stderr.contains("open '/proc/lanes-capture.pcap'"), "\(unwritable.stderr)")
                #expect(try !tb.xdpAttached(tb.gen, "g0") && !tb.xdpAttached(tb.sink, "s0"))
            }
        }

        /// Capture keeps what it can and counts the rest: at 50 kpps it loses
        /// nothing; with 64 slots a lane at top speed falls behind, and every packet the
        /// lanes received is either captured or counted as capture_dropped.
        @Test func captureLosesNothingAtARateItKeepsAndCountsWhatItCannot() throws {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lanes-cl-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try withTestbed { tb in
                let file = dir + "/c.pcap"
                let cap = try Running(["capture", "--netns", tb.dut, "d0", "-w", file, "--filter", "udp", "--duration", "30", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                let g = try lanes("gen", "--testbed", tb.name, "--flows", "8", "--count", "50000", "--rate", "50kpps", "--tx", "xsk", "--json", timeout: 60).json()
                usleep(500_000)
                cap.signal(SIGINT)
                let c = try cap.wait().json()
                #expect(g["tx_packets"] as? Int == 50000)
                #expect(c["captured"] as? Int == 50000 && c["capture_dropped"] as? Int == 0, "\(c)")
                let records = try Pcap.read(Array(try #require(FileManager.default.contents(atPath: file))))
                // Wall-clock times of this run, none older than the run nor in the future.
                let now = UInt64(Date().timeIntervalSince1970 * 1e9)
                #expect(records.count == 50000 && records.allSatisfy { $0.timestampNanos < now && $0.timestampNanos > now - 60_000_000_000 })
                // Two lanes, one file in time order: tshark reads non-decreasing times.
                let perLane = try #require(c["lanes"] as? [[String: Any]])
                #expect(perLane.count == 2 && perLane.allSatisfy { ($0["captured"] as? Int ?? 0) > 0 }, "\(perLane)")
                #expect(c["late_records"] as? Int == 0, "\(c)")
                let t = try run(["tshark", "-r", file, "-T", "fields", "-e", "frame.time_epoch"], tool: "/usr/bin/env", timeout: 120)
                let times = t.stdout.split(separator: "\n").map { line -> (Int, Int) in
                    let parts = line.split(separator: ".")
                    return (Int(parts.first ?? "") ?? -1, Int((parts.count > 1 ? String(parts[1]) : "").padding(toLength: 9, withPad: "0", startingAt: 0)) ?? -1)
                }
                #expect(t.status == 0 && times.count == 50000, "tshark: \(t.stderr)")
                let backwards = zip(times, times.dropFirst()).filter { $0.1 < $0.0 }.count
                #expect(backwards == 0, "tshark reads \(backwards) steps back in time over \(times.count) records")
                // A small buffer at top speed.
                let small = try Running(["capture", "--netns", tb.dut, "d0", "-w", file, "--filter", "udp", "--buffer", "64", "--duration", "30", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                _ = try lanes("gen", "--testbed", tb.name, "--flows", "8", "--count", "2000000", "--tx", "xsk", "--json", timeout: 60)
                usleep(500_000)
                small.signal(SIGINT)
                let s = try small.wait().json()
                let rx = s["rx_packets"] as? Int ?? -1
                #expect((s["capture_dropped"] as? Int ?? 0) > 0, "\(s)")
                #expect((s["captured"] as? Int ?? 0) + (s["capture_dropped"] as? Int ?? 0) == rx, "\(s)")
            }
        }
    }
}
