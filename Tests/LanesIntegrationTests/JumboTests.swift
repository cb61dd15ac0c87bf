import Foundation
import LanesPacket
import Testing

extension IntegrationTests {
    /// Jumbo frames on the testbed at MTU 9000: AF_XDP multi-buffer (XDP_USE_SG)
    /// through the frags-aware XDP program, on every lane command that moves them.
    @Suite(.serialized) struct Jumbo {
        /// `lanes gen --size 9000 --count 100000` arrives whole at the sink: every
        /// packet and every byte, counted by the XDP program over all of a packet's buffers.
        @Test func gen9000ArrivesWholeAtTheSink() throws {
            try withTestbed(queues: 2, mtu: 9000) { tb in
                let sink = try Running(["sink", "d0", "--netns", tb.dut, "--filter", "udp dport 9000", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                let gen = try lanes("gen", "--testbed", tb.name, "--size", "9000", "--count", "100000", "--flows", "16", "--rss",
                                    "--tx", "xsk", "--interval", "0", "--json", timeout: 90)
                try #require(gen.status == 0, "\(gen.stderr)")
                usleep(300_000)
                sink.signal(SIGINT)
                let s = try sink.wait().json()
                #expect(s["packets"] as? Int == 100_000)
                #expect(s["bytes"] as? Int == 900_000_000)
                let g = try gen.json()
                #expect(g["tx_packets"] as? Int == 100_000, "\(g)")
            }
        }

        /// `lanes fwd io` and `l3` move 9000-byte frames that tcpdump on s0 sees
        /// whole, with valid checksums (l3: TTL decremented, MACs rewritten), by the
        /// lanes and by the XDP program (its multi-buffer variant, lanes_fwd_frags).
        @Test(arguments: ["io", "l3"], ["xsk", "xdp"])
        func forwardedJumboFramesArriveIntact(mode: String, path: String) throws {
            try withTestbed(queues: 2, mtu: 9000) { tb in
                let k = 1000
                let pcap = FileManager.default.temporaryDirectory.appendingPathComponent("lanes-jumbo-\(getpid())-\(mode)-\(path).pcap").path
                defer { try? FileManager.default.removeItem(atPath: pcap) }
                let dump = try Running(["netns", "exec", tb.sink, "tcpdump", "-i", "s0", "-n", "-U", "-s", "0", "-w", pcap, "-c", "\(k)", "udp dst port 9000"], tool: "/usr/sbin/ip")
                usleep(1_000_000)
                let fwd = try Running(["fwd", "--testbed", tb.name, "--mode", mode, "--path", path, "--filter", "udp dport 9000", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                if path == "xdp" { #expect(try tb.xdpProgramName(tb.dut, "d0") == "lanes_fwd_frags") }
                let gen = try lanes("gen", "--testbed", tb.name, "--size", "9000", "--count", "\(k)", "--flows", "16", "--rss", "--rate", "10kpps", "--interval", "0")
                try #require(gen.status == 0, "\(gen.stderr)")
                let d = dump.wait(timeout: 20)
                fwd.signal(SIGINT)
                let f = fwd.wait()
                try #require(f.status == 0, "\(f.stderr)")
                let s = try f.json()
                #expect(s["tx_packets"] as? Int == k)
                #expect(s["tx_bytes"] as? Int == k * 9000)
                if path == "xsk" { #expect(s["frames_balanced"] as? Bool == true) }
                #expect(d.status == 0, "tcpdump: \(d.stderr)")
                let decoded = try lanes("decode", pcap, "--json")
                try #require(decoded.status == 0, "\(decoded.stderr)")
                let pkts = decoded.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                #expect(pkts.count == k)
                var wrong = 0
                for p in pkts {
                    var ok = p["length"] as? Int == 9000 && p["captured_length"] as? Int == 9000 && p["malformed"] as? Bool == false
                        && p["ip_checksum_valid"] as? Bool == true && p["l4_checksum_valid"] as? Bool == true && p["ip_dst"] as? String == "198.18.1.1"
                    if mode == "l3" { ok = ok && p["ttl"] as? Int == 63 && p["eth_src"] as? String == "02:4c:00:00:01:02" && p["eth_dst"] as? String == "02:4c:00:00:01:01" }
                    else { ok = ok && p["ttl"] as? Int == 64 }
                    if !ok { wrong += 1 }
                }
                #expect(wrong == 0, "\(wrong) of \(pkts.count) jumbo frames arrived damaged; first: \(pkts.first ?? [:])")
            }
        }

        /// 64-byte and 9000-byte frames in one stream through `fwd l3` keep their
        /// order: the signature's sequence numbers arrive at s0 0, 1, 2, ...
        @Test func aMixOfSmallAndJumboFramesKeepsOrder() throws {
            try withTestbed(queues: 1, mtu: 9000) { tb in
                let k = 2000
                let pcap = FileManager.default.temporaryDirectory.appendingPathComponent("lanes-jumbo-mix-\(getpid()).pcap").path
                defer { try? FileManager.default.removeItem(atPath: pcap) }
                let dump = try Running(["netns", "exec", tb.sink, "tcpdump", "-i", "s0", "-n", "-U", "-s", "0", "-w", pcap, "-c", "\(k)", "udp dst port 9000"], tool: "/usr/sbin/ip")
                usleep(1_000_000)
                let fwd = try Running(["fwd", "--testbed", tb.name, "--mode", "l3", "--filter", "udp dport 9000", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                let gen = try lanes("gen", "--testbed", tb.name, "--size", "64,9000,64,64,1500,9000", "--count", "\(k)", "--flows", "1", "--rate", "20kpps", "--interval", "0")
                try #require(gen.status == 0, "\(gen.stderr)")
                let d = dump.wait(timeout: 20)
                fwd.signal(SIGINT)
                #expect(fwd.wait().status == 0)
                #expect(d.status == 0, "tcpdump: \(d.stderr)")
                let records = try Pcap.read(Array(try Data(contentsOf: URL(fileURLWithPath: pcap))))
                #expect(records.count == k)
                let sizes = [64, 9000, 64, 64, 1500, 9000]
                var outOfOrder = 0
                for (i, r) in records.enumerated() {
                    // IPv4 + UDP: the signature starts at 42; its sequence at 46.
                    let b = r.data
                    let seq = b.count >= 50 ? Int(UInt32(b[46]) << 24 | UInt32(b[47]) << 16 | UInt32(b[48]) << 8 | UInt32(b[49])) : -1
                    if seq != i || b.count != sizes[i % sizes.count] { outOfOrder += 1 }
                }
                #expect(outOfOrder == 0, "\(outOfOrder) of \(records.count) frames out of order or resized")
            }
        }

        /// A 40000-byte packet reaches the forwarder in 23 buffers of 1792 bytes,
        /// more than the kernel takes in one TX packet (max_skb_frags + 1 = 18):
        /// the lane counts it, recycles its frames, and forwards the next ones.
        @Test func aPacketWithTooManyBuffersIsCountedAndTheLaneGoesOn() throws {
            try withTestbed(queues: 1, mtu: 40000) { tb in
                let fwd = try Running(["fwd", "--testbed", tb.name, "--mode", "io", "--filter", "udp dport 9000", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                let big = try lanes("gen", "--testbed", tb.name, "--size", "40000", "--frame-size", "4096", "--count", "300", "--rate", "5kpps", "--interval", "0")
                try #require(big.status == 0, "\(big.stderr)")
                let jumbo = try lanes("gen", "--testbed", tb.name, "--size", "9000", "--count", "300", "--rate", "5kpps", "--interval", "0")
                try #require(jumbo.status == 0, "\(jumbo.stderr)")
                usleep(300_000)
                fwd.signal(SIGINT)
                let s = try fwd.wait().json()
                #expect((s["drops"] as? [String: Any])?["drop_too_many_frags"] as? Int == 300)
                #expect(s["rx_packets"] as? Int == 600)
                #expect(s["tx_packets"] as? Int == 300)
                #expect(s["frames_balanced"] as? Bool == true)
            }
        }

        /// `lanes capture` keeps 9000-byte frames whole (each lane joins a packet's
        /// buffers into its slot), and `lanes replay` sends them back out whole:
        /// the sink counts every packet and byte.
        @Test func captureAndReplayJumboFrames() throws {
            try withTestbed(queues: 2, mtu: 9000) { tb in
                let k = 500
                let file = FileManager.default.temporaryDirectory.appendingPathComponent("lanes-jumbo-cap-\(getpid()).pcap").path
                defer { try? FileManager.default.removeItem(atPath: file) }
                let cap = try Running(["capture", "d0", "--netns", tb.dut, "-w", file, "--filter", "udp dport 9000", "--count", "\(k)", "--duration", "30", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                let gen = try lanes("gen", "--testbed", tb.name, "--size", "9000", "--count", "\(k)", "--flows", "8", "--rss", "--rate", "10kpps", "--interval", "0")
                try #require(gen.status == 0, "\(gen.stderr)")
                let c = cap.wait(timeout: 20)
                try #require(c.status == 0, "\(c.stderr)")
                #expect(try c.json()["captured"] as? Int == k)
                let records = try Pcap.read(Array(try Data(contentsOf: URL(fileURLWithPath: file))))
                #expect(records.count == k)
                let intact = records.filter { r in
                    r.data.count == 9000 && r.data.withUnsafeBytes { PacketParser.parse($0, verifyChecksums: true) }.l4ChecksumValid == true
                }.count
                #expect(intact == k, "\(intact) of \(records.count) captured frames whole with a valid UDP checksum")
                let sink = try Running(["sink", "d0", "--netns", tb.dut, "--filter", "udp dport 9000", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                let r = try lanes("replay", file, "--testbed", tb.name, "--rate", "10kpps", "--json")
                try #require(r.status == 0, "\(r.stderr)")
                usleep(300_000)
                sink.signal(SIGINT)
                let s = try sink.wait().json()
                #expect(s["packets"] as? Int == k)
                #expect(s["bytes"] as? Int == k * 9000)
            }
        }

        /// An IMIX with a jumbo member: gen picks AF_XDP by itself and says why (a
        /// 9000-byte frame is no live frame), and both receivers on s0 (the XDP
        /// program, and AF_XDP lanes taking multi-buffer packets) count every
        /// signed packet through `fwd io`, none lost, none reordered.
        @Test(arguments: ["xdp", "xsk"]) func aJumboIMIXReachesBothReceiversWhole(rx: String) throws {
            try withTestbed(queues: 1, mtu: 9000) { tb in
                let k = 3000
                let fwd = try Running(["fwd", "--netns", tb.dut, "d0", "d1", "--mode", "io", "--filter", "udp dport 9000", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                let receiver = try Running(["gen", "s0", "--netns", tb.sink, "--rx-only", "--rx", rx, "--flows", "2", "--duration", "6", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.sink, "s0")
                let gen = try lanes("gen", "--testbed", tb.name, "--imix-mix", "64:7,1500:4,9000:1", "--flows", "2", "--count", "\(k)", "--rate", "20kpps",
                                    "--interval", "0", "--json", timeout: 60)
                try #require(gen.status == 0, "\(gen.stderr)")
                let g = try gen.json()
                #expect(g["tx_path"] as? String == "xsk")
                #expect((g["tx_path_reason"] as? String ?? "").contains("9000-byte frame does not fit a live frame"), "\(g["tx_path_reason"] ?? "")")
                #expect(g["tx_bytes"] as? Int == k / 12 * (7 * 64 + 4 * 1500 + 9000), "\(g)")
                let r = receiver.wait(timeout: 20)
                fwd.signal(SIGINT)
                #expect(fwd.wait().status == 0)
                try #require(r.status == 0, "\(r.stderr)")
                let j = try r.json()
                #expect(j["rx_packets"] as? Int == k, "\(j)")
                #expect(j["lost"] as? Int == 0 && j["reordered"] as? Int == 0 && j["duplicates"] as? Int == 0, "\(j)")
            }
        }

        /// `fwd --pipeline`: the RX lane hands each jumbo packet's buffers to its
        /// flow's worker together; the workers send them whole. The AF_XDP receiver
        /// on s0 counts every packet, none lost or reordered, and the frames balance.
        @Test func thePipelineForwardsJumboFramesWhole() throws {
            try withTestbed(queues: 2, mtu: 9000) { tb in
                let k = 4000
                let fwd = try Running(["fwd", "--testbed", tb.name, "--mode", "io", "--pipeline", "--workers", "0,1", "--queues", "0",
                                       "--filter", "udp dport 9000", "--interval", "0", "--json"])
                let rx = try Running(["gen", "s0", "--netns", tb.sink, "--rx-only", "--flows", "16", "--dst-mac", "02:4c:00:00:01:02",
                                      "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                try tb.waitForXDP(tb.sink, "s0")
                let gen = try lanes("gen", "--testbed", tb.name, "--queues", "0", "--flows", "16", "--size", "9000,64,1500", "--count", "\(k)",
                                    "--rate", "10kpps", "--interval", "0", "--json")
                try #require(gen.status == 0, "\(gen.stderr)")
                usleep(500_000)
                fwd.signal(SIGINT)
                rx.signal(SIGINT)
                let f = fwd.wait(), r = rx.wait()
                try #require(f.status == 0 && r.status == 0, "\(f.stderr) \(r.stderr)")
                let fj = try f.json(), rj = try r.json()
                let laneList = try #require(fj["lanes"] as? [[String: Any]])
                let workerTx = laneList.dropFirst().map { $0["tx_packets"] as? Int ?? -1 }
                #expect(workerTx.reduce(0, +) == k && workerTx.allSatisfy { $0 > 0 }, "\(workerTx)")
                #expect(fj["multi_buffer"] as? Bool == true)
                #expect(fj["frames_balanced"] as? Bool == true, "\(fj["lanes"] ?? "")")
                #expect(rj["rx_packets"] as? Int == k)
                #expect(rj["lost"] as? Int == 0 && rj["reordered"] as? Int == 0)
            }
        }

        /// Jumbo sizes the interface or the kernel cannot take are one-line errors.
        @Test func jumboSizesPastTheMTUOrTheBufferLimitAreRefused() throws {
            try withTestbed(queues: 1, mtu: 9000) { tb in
                let overMTU = try lanes("gen", "--testbed", tb.name, "--size", "9100", "--count", "1")
                #expect(overMTU.status != 0)
                #expect(overMTU.stderr.contains("MTU of 9000") && overMTU.stderr.contains("ip link set dev g0 mtu"), "\(overMTU.stderr)")
                #expect(overMTU.stderr.split(separator: "\n").count <= 2, "\(overMTU.stderr)")
                let forcedOff = try lanes("gen", "--testbed", tb.name, "--size", "9000", "--count", "1", "--multi-buffer", "off")
                #expect(forcedOff.status != 0)
                #expect(forcedOff.stderr.contains("without multi-buffer"), "\(forcedOff.stderr)")
                // Receiving at MTU 9000 without multi-buffer would lose every jumbo frame: refused, nothing attached.
                let dropOff = try lanes("drop", "--testbed", tb.name, "--duration", "1", "--multi-buffer", "off")
                #expect(dropOff.status != 0)
                #expect(dropOff.stderr.contains("MTU of 9000") && dropOff.stderr.contains("without multi-buffer"), "\(dropOff.stderr)")
                #expect(dropOff.stderr.split(separator: "\n").count <= 2, "\(dropOff.stderr)")
                #expect(try !tb.xdpAttached(tb.dut, "d0"), "a refused run left XDP on d0")
            }
        }
    }
}
