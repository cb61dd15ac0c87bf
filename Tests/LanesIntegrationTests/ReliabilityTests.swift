import Foundation
import Testing

extension IntegrationTests {
    @Suite(.serialized) struct Reliability {
        /// At least 25 misuses: each ends with one line on stderr that names the
        /// problem (and a fix), a non-zero exit, and nothing left attached.
        @Test func badInputIsOneClearLineAndLeavesNothing() throws {
            try withTestbed(queues: 2) { tb in
                let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lanes-bad-\(getpid())")
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(at: dir) }
                let badRoutes = dir.appendingPathComponent("routes.txt").path
                try "198.18.1.0/24 not-a-mac d1\n".write(toFile: badRoutes, atomically: true, encoding: .utf8)
                let ghostPort = dir.appendingPathComponent("ghost-routes.txt").path
                try "198.18.1.0/24 02:4c:00:00:01:01 eth7\n".write(toFile: ghostPort, atomically: true, encoding: .utf8)
                let badFlows = dir.appendingPathComponent("flows.txt").path
                try "198.18.0.1 198.18.1.1 1024\n".write(toFile: badFlows, atomically: true, encoding: .utf8)
                let badPcap = dir.appendingPathComponent("bad.pcap").path
                try Data([1, 2, 3, 4, 5, 6, 7, 8]).write(to: URL(fileURLWithPath: badPcap))
                let ns = ["--netns", tb.dut], gen = ["--testbed", tb.name]
                let cases: [([String], String)] = [
                    (["drop", "nosuch0"] + ns, "not found"),
                    (["drop", "d0", "--netns", "no-such-namespace"], "does not exist"),
                    (["drop", "d0", "--queues", "5"] + ns, "out of range"),
                    (["drop", "d0", "--queues", "0-3"] + ns, "out of range"),
                    (["drop", "d0", "--queues", "0-1", "--cores", "0,99"] + ns, "core 99 out of range"),
                    (["drop", "d0", "--queues", "0-1", "--cores", "0"] + ns, "1 cores"),
                    (["drop", "d0", "--queues", "x"] + ns, "bad --queues"),
                    (["drop", "d0", "--frame-size", "3000"] + ns, "not a power of two"),
                    (["drop", "d0", "--frame-size", "1024"] + ns, "frame size"),
                    (["drop", "d0", "--ring-size", "16"] + ns, "ring size"),
                    (["drop", "d0", "--bind", "zero-copy"] + ns, "zero-copy"),
                    (["drop", "d0", "--filter", "udp dport 0"] + ns, "bad --filter"),
                    (["drop", "d0", "--burst", "0"] + ns, "burst"),
                    // Past the lanes' 256-descriptor bursts, on every path (the pipeline's
                    // fan-out and the live-frames batch included): refused before set-up.
                    (["drop", "d0", "--burst", "300"] + ns, "burst size 300 out of range"),
                    (["fwd", "d0", "d1", "--mode", "io", "--burst", "300"] + ns, "burst size 300 out of range"),
                    (["fwd", "d0", "d1", "--mode", "io", "--pipeline", "--burst", "300"] + ns, "burst size 300 out of range"),
                    (["gen", "--tx", "xsk", "--burst", "300"] + gen, "burst size 300 out of range"),
                    (["gen", "--tx", "xdp", "--burst", "300"] + gen, "burst size 300 out of range"),
                    // Options a mode cannot apply, refused by the lifecycle (or the TX-path choice) before set-up.
                    (["gen", "--rx-only", "--rx", "xdp", "--busy-poll"] + gen, "--busy-poll: the XDP receiver (--rx xdp) has no socket to busy-poll"),
                    (["gen", "--rx-only", "--rx", "xdp", "--metrics", "19999"] + gen, "--metrics: lanes gen --rx-only --rx xdp serves no metrics"),
                    (["gen", "--tx", "xdp", "--busy-poll"] + gen, "--tx xdp: --busy-poll polls AF_XDP sockets, and live frames have none"),
                    (["drop", "d0", "--flow-cap", "fast"] + ns, "bad --flow-cap"),
                    (["fwd", "d0", "--mode", "teleport"] + ns, "not available"),
                    (["fwd", "d0", "d1", "--mode", "l3", "--routes", badRoutes] + ns, "bad route file"),
                    (["fwd", "d0", "d1", "--mode", "l3", "--routes", dir.appendingPathComponent("none").path] + ns, "cannot read route file"),
                    (["fwd", "d0", "d1", "--mode", "l3", "--routes", ghostPort] + ns, "names port 'eth7', which does not exist"),
                    (["fwd", "d0", "--mode", "l2"] + ns, "needs an OUT interface"),
                    (["gen", "--dst-mac", "zz:00:00:00:00:01"] + gen, "bad --dst-mac"),
                    (["gen", "--dst-ip", "198.18.1"] + gen, "bad --src-ip/--dst-ip"),
                    (["gen", "--dst-ip", "10.0.0.1"] + gen, "outside 198.18.0.0/15"),
                    (["gen", "--src-port", "5000-4000"] + gen, "bad --src-port"),
                    (["gen", "--rate", "fast"] + gen, "bad --rate"),
                    (["gen", "--size", "20"] + gen, "bad --size"),
                    (["gen", "--imix-mix", "64:x"] + gen, "bad --imix-mix"),
                    (["gen", "--flows-file", badFlows] + gen, "bad flows file"),
                    (["gen", "--flows", "0"] + gen, "bad --flows"),
                    (["gen", "--imix", "banana"] + gen, "--imix takes no value, but 'banana' follows it; for a custom mix use --imix-mix"),
                    (["decode", badPcap], "bad pcap"),
                    (["testbed", "up", "--name", "bad/name"], "bad testbed name"),
                    (["testbed", "traffic", "--name", tb.name, "--count", "0"], "bad --count 0"),
                    (["testbed", "traffic", "--name", tb.name, "--pps=-5"], "bad --pps"),
                    (["scale", "--lanes", "9"], "online CPUs"),
                    // Between hosts: refused before any connection or traffic.
                    (["scale", "--dut-host", "root@198.19.254.1"], "between two hosts both ports are needed"),
                    (["scale", "--gen-host", "root@", "--gen-port", "g0", "--dut-port", "d0"], "bad host 'root@'"),
                    (["rfc2544", "--dut", "none", "--gen-host", "root@198.19.254.1", "--gen-port", "g0", "--rx-host", "root@198.19.254.2", "--rx-port", "s0",
                      "--tests", "throughput,latency"], "their clocks are not comparable"),
                ]
                #expect(cases.count >= 25)
                for (args, message) in cases {
                    let o = try run(args + (args[0] == "decode" || args[0] == "testbed" || args[0] == "scale" || args[0] == "rfc2544" ? [] : ["--duration", "1", "--interval", "0"]))
                    #expect(o.status != 0, "\(args): exit 0")
                    let lines = o.stderr.split(separator: "\n")
                    #expect(lines.count == 1, "\(args): stderr has \(lines.count) lines: \(o.stderr)")
                    #expect(o.stderr.contains(message), "\(args): \(o.stderr)")
                    #expect(try !tb.xdpAttached(tb.dut, "d0") && !tb.xdpAttached(tb.gen, "g0"), "\(args) left a program attached")
                }
                // Not root: one line naming the problem and the fix.
                let nobody = try run(["--reuid=65534", "--regid=65534", "--clear-groups", lanesBinary, "drop", "--duration", "1"], tool: "/usr/bin/setpriv")
                #expect(nobody.status != 0)
                #expect(nobody.stderr.split(separator: "\n").count == 1, "\(nobody.stderr)")
                #expect(nobody.stderr.contains("root"), "\(nobody.stderr)")
            }
        }

        @Test func linkDownAndUpPausesAndResumes() throws {
            try withTestbed(queues: 2) { tb in
                let drop = try Running(["drop", "d0", "--netns", tb.dut, "--filter", "udp dport 9000", "--interval", "0.2", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                try tb.traffic(count: 2000, flows: 8)
                #expect(try ip("-n", tb.dut, "link", "set", "d0", "down").status == 0)
                usleep(800_000)
                #expect(try ip("-n", tb.dut, "link", "set", "d0", "up").status == 0)
                usleep(1_500_000)
                try tb.traffic(count: 2000, flows: 8)
                usleep(500_000)
                drop.signal(SIGINT)
                let o = drop.wait()
                try #require(o.status == 0, "lanes exited on a link flap: \(o.stderr)")
                let s = try o.json()
                #expect(s["rx_packets"] as? Int == 4000, "traffic did not resume after the link came back")
                #expect((s["link_down_events"] as? Int ?? 0) >= 1)
                #expect(s["frames_balanced"] as? Bool == true)
            }
        }

        /// The device reset of a veth: the pair deleted and made again under its
        /// names (or the peer's namespace deleted, which takes the pair with it).
        /// The run ends within 1 s: its report (exit_reason "interface lost", what
        /// was counted), then one line naming the interface, a non-zero exit, and
        /// nothing attached to the new d0.
        @Test(arguments: ["namespace deleted", "pair re-created"])
        func aVanishedInterfaceEndsTheRunWithItsReport(how: String) throws {
            try withTestbed(queues: 2) { tb in
                let drop = try Running(["drop", "d0", "--netns", tb.dut, "--filter", "udp dport 9000", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                try tb.traffic(count: 1000, flows: 8)
                usleep(300_000)
                if how == "pair re-created" {
                    #expect(try ip("-n", tb.dut, "link", "del", "d0").status == 0)
                    let again = try ip("link", "add", "d0", "netns", tb.dut, "type", "veth", "peer", "name", "g0", "netns", tb.gen)
                    try #require(again.status == 0, "\(again.stderr)")
                } else {
                    #expect(try ip("netns", "del", tb.gen).status == 0)
                }
                let gone = Date()
                let o = drop.wait(timeout: 10)
                let took = Date().timeIntervalSince(gone)
                #expect(took < 1.0, "\(how): the run went on \(took) s")
                #expect(o.status != 0)
                let lines = o.stderr.split(separator: "\n")
                #expect(lines.count == 1 && lines[0].contains("the run ended at") && lines[0].contains("interface d0 disappeared"), "\(how): \(o.stderr)")
                let report = try o.json()
                #expect(report["exit_reason"] as? String == "interface lost" && (report["fault"] as? String ?? "").contains("interface d0 disappeared"), "\(report)")
                #expect(report["rx_packets"] as? Int == 1000, "\(how): what was counted before: \(report["rx_packets"] ?? "?")")
                if how == "pair re-created" { #expect(try !tb.xdpAttached(tb.dut, "d0"), "a program on the new d0") }
            }
        }

        @Test func queueCountChangeIsPickedUp() throws {
            try withTestbed(queues: 1) { tb in
                let one = try lanes("drop", "d0", "--netns", tb.dut, "--duration", "0.5", "--interval", "0", "--json")
                #expect((try one.json()["lanes"] as? [Any])?.count == 1)
                let up = try lanes("testbed", "up", "--name", tb.name, "--queues", "2")
                #expect(up.status == 0, "\(up.stderr)")
                let two = try lanes("drop", "d0", "--netns", tb.dut, "--duration", "0.5", "--interval", "0", "--json")
                #expect((try two.json()["lanes"] as? [Any])?.count == 2)
            }
        }

        /// A UMEM far too small for the offered load: the kernel counts what it
        /// could not place, nothing is lost from the accounting, and once the load
        /// falls every packet arrives again.
        @Test func starvedFillRingIsCountedAndRecovers() throws {
            try withTestbed(queues: 1) { tb in
                let out = FileManager.default.temporaryDirectory.appendingPathComponent("lanes-starve-\(getpid()).out")
                let drop = try Running(["drop", "d0", "--netns", tb.dut, "--frames", "64", "--ring-size", "64", "--filter", "udp dport 9000",
                                        "--interval", "0.2", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                _ = out
                let flood = try lanes("gen", "--testbed", tb.name, "--count", "300000", "--interval", "0")
                #expect(flood.status == 0, "\(flood.stderr)")
                usleep(800_000)
                let before = drop.stdoutSoFar.split(separator: "\n").last
                let r1 = (try? JSONSerialization.jsonObject(with: Data((before ?? "").utf8)) as? [String: Any])?["rx_packets"] as? Int ?? -1
                try tb.traffic(count: 1000, flows: 4, pps: 2000)
                usleep(800_000)
                drop.signal(SIGINT)
                let o = drop.wait()
                try #require(o.status == 0, "\(o.stderr)")
                let s = try o.json()
                let rx = try #require(s["rx_packets"] as? Int)
                let xsk = try #require(s["xsk"] as? [String: Any]), xdp = try #require(s["xdp"] as? [String: Any])
                let kernelDropped = (xsk["rx_dropped"] as? Int ?? 0) + (xsk["rx_fill_ring_empty_descs"] as? Int ?? 0) + (xsk["rx_ring_full"] as? Int ?? 0)
                #expect(kernelDropped > 0, "the flood should have starved a 64-frame UMEM")
                #expect(rx + (xsk["rx_dropped"] as? Int ?? 0) == xdp["redirected"] as? Int, "redirected = received + dropped by the kernel")
                #expect(rx - r1 == 1000, "after the flood, the slow traffic must all arrive (got \(rx - r1))")
                #expect(s["frames_balanced"] as? Bool == true)
            }
        }
    }
}

extension IntegrationTests.Reliability {
    @Test func metricsAreServedInPrometheusFormat() throws {
        try withTestbed(queues: 2) { tb in
            let port = 19000 + Int(getpid() % 1000)
            let drop = try Running(["drop", "d0", "--netns", tb.dut, "--filter", "udp dport 9000", "--metrics", "127.0.0.1:\(port)", "--interval", "0", "--json"])
            try tb.waitForXDP(tb.dut, "d0")
            try tb.traffic(count: 3000, flows: 8)
            usleep(500_000)
            let scrape = try ip("netns", "exec", tb.dut, "curl", "-sS", "--max-time", "5", "http://127.0.0.1:\(port)/metrics")
            drop.signal(SIGINT)
            _ = drop.wait()
            try #require(scrape.status == 0, "curl: \(scrape.stderr)")
            let text = scrape.stdout
            for family in ["lanes_rx_packets_total", "lanes_tx_bytes_total", "lanes_drops_total", "lanes_xsk_rx_dropped_total",
                           "lanes_xsk_rx_fill_ring_empty_descs_total", "lanes_xdp_redirected_total", "lanes_fill_ring_frames"] {
                #expect(text.contains("# TYPE \(family) "), "no \(family)")
            }
            let rx = text.split(separator: "\n").filter { $0.hasPrefix("lanes_rx_packets_total{") }
                .compactMap { $0.split(separator: " ").last.flatMap { Int($0) } }.reduce(0, +)
            #expect(rx == 3000)
            let dropApp = text.split(separator: "\n").filter { $0.hasPrefix("lanes_drops_total{") && $0.contains("cause=\"app\"") }
                .compactMap { $0.split(separator: " ").last.flatMap { Int($0) } }.reduce(0, +)
            #expect(dropApp == 3000)
        }
    }
}

extension IntegrationTests.Reliability {
    /// The text passes `promtool check metrics`, and a real Prometheus server (in
    /// the dut namespace, its own data directory, stopped at the end) scrapes a
    /// running `lanes drop --metrics` and gives the receive rate back over its API.
    @Test func promtoolIsCleanAndARealPrometheusScrapesLanes() throws {
        try withTestbed(queues: 2) { tb in
            let port = 19600 + Int(getpid() % 100), promPort = port + 100
            let drop = try Running(["drop", "d0", "--netns", tb.dut, "--metrics", "\(port)", "--interval", "0", "--json"])
            try tb.waitForXDP(tb.dut, "d0")
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lanes-prom-\(getpid())")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let config = dir.appendingPathComponent("prometheus.yml")
            try """
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: lanes
                static_configs:
                  - targets: ["127.0.0.1:\(port)"]
            """.write(to: config, atomically: true, encoding: .utf8)
            let prom = try Running(["netns", "exec", tb.dut, "prometheus", "--config.file=\(config.path)",
                                    "--storage.tsdb.path=\(dir.appendingPathComponent("data").path)",
                                    "--web.listen-address=127.0.0.1:\(promPort)"], tool: "/usr/sbin/ip")
            defer { prom.signal(SIGTERM); _ = prom.wait(timeout: 20) }
            // 100000 datagrams at 5000 pps: 20 s of traffic while Prometheus scrapes every second.
            let traffic = try Running(["testbed", "traffic", "--name", tb.name, "--count", "100000", "--flows", "8", "--pps", "5000"])
            let check = try ip("netns", "exec", tb.dut, "sh", "-c", "curl -sS --max-time 5 http://127.0.0.1:\(port)/metrics | promtool check metrics")
            #expect(check.status == 0, "promtool: \(check.stdout) \(check.stderr)")
            // Asked until the server has started and scraped a few times (up to 15 s).
            var q = Output(status: -1, stdout: "", stderr: "")
            let deadline = Date().addingTimeInterval(15)
            repeat {
                usleep(1_000_000)
                q = try ip("netns", "exec", tb.dut, "curl", "-sS", "--max-time", "5", "-G", "http://127.0.0.1:\(promPort)/api/v1/query",
                           "--data-urlencode", "query=sum(rate(lanes_rx_packets_total[4s]))")
            } while Date() < deadline && !q.stdout.contains("\"value\"")
            // The first samples of a new series give a partial window: ask again once it is full.
            usleep(5_000_000)
            q = try ip("netns", "exec", tb.dut, "curl", "-sS", "--max-time", "5", "-G", "http://127.0.0.1:\(promPort)/api/v1/query",
                       "--data-urlencode", "query=sum(rate(lanes_rx_packets_total[4s]))")
            traffic.signal(SIGINT)
            _ = traffic.wait(timeout: 30)
            drop.signal(SIGINT)
            _ = drop.wait()
            let j = try #require(try JSONSerialization.jsonObject(with: Data(q.stdout.utf8)) as? [String: Any], "\(q.stdout) \(q.stderr)")
            let result = ((j["data"] as? [String: Any])?["result"] as? [[String: Any]])?.first
            let value = Double((result?["value"] as? [Any])?.last as? String ?? "") ?? -1
            #expect(value > 3000 && value < 7000, "Prometheus saw \(value) pps for 5000 pps sent: \(q.stdout)")
        }
    }
}

extension IntegrationTests.Reliability {
    /// The first hour's smaller confusions: help names the right default port, a
    /// cut capture still decodes up to the cut, and a receive with no reflector
    /// says so instead of printing a latency of zeros.
    @Test func smallConfusionsAreGone() throws {
        let help = try lanes("gen", "--help")
        let line = help.stdout.split(separator: "\n").first { $0.contains("<interface>") && $0.contains("default") } ?? ""
        #expect(line.contains("gen:g0") && !line.contains("dut:d0"), "\(line)")
        let dropHelp = try lanes("drop", "--help")
        #expect(dropHelp.stdout.contains("Interface (default: the testbed's dut:d0)"))

        try withTestbed(queues: 1) { tb in
            // A capture of 3 frames from the wire, cut in the last one.
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("lanes-cut-\(getpid()).pcap")
            defer { try? FileManager.default.removeItem(at: file) }
            let dump = try Running(["netns", "exec", tb.dut, "tcpdump", "-i", "d0", "-Q", "in", "-c", "3", "-w", file.path, "udp"], tool: "/usr/sbin/ip")
            usleep(800_000)
            try tb.traffic(count: 3, flows: 1, pps: 100)
            _ = dump.wait(timeout: 10)
            var bytes = try Data(contentsOf: file)
            try #require(bytes.count > 24 + 3 * 16, "capture: \(bytes.count) bytes")
            bytes.removeLast(20)
            try bytes.write(to: file)
            let d = try lanes("decode", file.path)
            #expect(d.status != 0)
            #expect(d.stdout.split(separator: "\n").count == 2, "the two whole records are printed: \(d.stdout)")
            #expect(d.stderr.contains("damaged after 2 records") && d.stderr.split(separator: "\n").count == 1, "\(d.stderr)")

            // Nothing reflects on the dut: the report says nothing came back.
            let g = try lanes("gen", "--testbed", tb.name, "--rx", "--count", "1000", "--rate", "10kpps", "--interval", "0")
            #expect(g.status == 0, "\(g.stderr)")
            #expect(g.stdout.contains("nothing came back") && g.stdout.contains("lanes fwd --mode macswap"), "\(g.stdout)")
            #expect(!g.stdout.contains("latency ns"), "\(g.stdout)")
        }
    }
}

extension IntegrationTests.Reliability {
    /// Every common spelling of --metrics serves, and the URL it serves is printed.
    @Test func metricsSpellingsServeAndPrintTheirURL() throws {
        try withTestbed(queues: 1) { tb in
            let base = 19500 + Int(getpid() % 400)
            let cases: [(String, String, [String])] = [
                ("\(base)", "http://127.0.0.1:\(base)/metrics", []),
                (":\(base + 1)", "http://[::]:\(base + 1)/metrics", ["http://127.0.0.1:\(base + 1)/metrics", "http://[fd00:198:18::2]:\(base + 1)/metrics"]),
                ("localhost:\(base + 2)", "http://127.0.0.1:\(base + 2)/metrics", []),
                ("[::1]:\(base + 3)", "http://[::1]:\(base + 3)/metrics", []),
            ]
            for (spec, url, others) in cases {
                let drop = try Running(["drop", "d0", "--netns", tb.dut, "--metrics", spec, "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                let scrapes = try ([url] + others).map { u in try ip("netns", "exec", tb.dut, "curl", "-sS", "-g", "--max-time", "5", u) }
                drop.signal(SIGINT)
                let o = drop.wait()
                #expect(o.stderr.contains("serving metrics at \(url)"), "\(spec): \(o.stderr)")
                for s in scrapes { #expect(s.status == 0 && s.stdout.contains("# TYPE lanes_rx_packets_total counter"), "\(spec): \(s.stderr)") }
            }
            for bad in ["::1:9100", ":0", "x:y", "[::1]9100"] {
                let o = try lanes("drop", "d0", "--netns", tb.dut, "--metrics", bad, "--duration", "1")
                #expect(o.status != 0 && o.stderr.contains("bad --metrics") && o.stderr.split(separator: "\n").count == 1, "\(bad): \(o.stderr)")
                #expect(try !tb.xdpAttached(tb.dut, "d0"))
            }
        }
    }
}

extension IntegrationTests.Reliability {
    /// After set-up every thread keeps only CAP_NET_ADMIN (bit 12), and the end
    /// still detaches the program with it: the lanes (with the metrics server),
    /// the XDP sink, the signed XDP receiver and the XDP forwarder.
    @Test(arguments: ["drop", "sink", "gen --rx-only --rx xdp", "fwd --path xdp"])
    func privilegesAreDroppedAfterSetUp(command: String) throws {
        try withTestbed(queues: 2) { tb in
            let port = 19900 + Int(getpid() % 99)
            let (args, ns, iface): ([String], String, String) = switch command {
            case "drop": (["drop", "d0", "--netns", tb.dut, "--metrics", "\(port)"], tb.dut, "d0")
            case "sink": (["sink", "--testbed", tb.name], tb.sink, "s0")
            case "fwd --path xdp": (["fwd", "--testbed", tb.name, "--mode", "l3", "--path", "xdp"], tb.dut, "d0")
            default: (["gen", "s0", "--netns", tb.sink, "--rx-only", "--rx", "xdp"], tb.sink, "s0")
            }
            let run = try Running(args + ["--interval", "0", "--json"])
            try tb.waitForXDP(ns, iface)
            usleep(300_000)
            let pid = run.process.pid
            let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")
            if command == "drop" {
                #expect(tasks.count >= 4, "main thread, two lanes and the metrics server")
                let names = tasks.compactMap { try? String(contentsOfFile: "/proc/\(pid)/task/\($0)/comm", encoding: .utf8) }
                #expect(names.contains("metrics\n"), "\(names)")
            }
            for t in tasks {
                let status = try String(contentsOfFile: "/proc/\(pid)/task/\(t)/status", encoding: .utf8)
                let eff = status.split(separator: "\n").first { $0.hasPrefix("CapEff:") }?.split(separator: "\t").last.map(String.init)
                #expect(eff == "0000000000001000", "\(command): thread \(t): CapEff \(eff ?? "?")")
            }
            run.signal(SIGINT)
            let o = run.wait()
            #expect(o.status == 0, "\(o.stderr)")
            #expect(try !tb.xdpAttached(ns, iface), "detaching needs CAP_NET_ADMIN, which was kept")
        }
    }
}

extension IntegrationTests.Reliability {
    /// A TX ring of 64 under a flood of macswap: the lane never stalls, counts
    /// what did not fit by cause, and loses no frame from the accounting.
    @Test func fullTXRingIsCountedWithoutStallOrLoss() throws {
        try withTestbed(queues: 1) { tb in
            let fwd = try Running(["fwd", "d0", "--netns", tb.dut, "--mode", "macswap", "--ring-size", "64", "--frames", "256",
                                   "--filter", "udp dport 9000", "--interval", "0", "--json"])
            try tb.waitForXDP(tb.dut, "d0")
            let gen = try lanes("gen", "--testbed", tb.name, "--count", "300000", "--interval", "0")
            #expect(gen.status == 0, "\(gen.stderr)")
            // Still alive and forwarding afterwards: no stall.
            let sink = try Running(["sink", "g0", "--netns", tb.gen, "--filter", "udp dport 9000", "--interval", "0", "--json"])
            try tb.waitForXDP(tb.gen, "g0")
            try tb.traffic(count: 500, flows: 4, pps: 2000)
            usleep(500_000)
            sink.signal(SIGINT)
            fwd.signal(SIGINT)
            let f = fwd.wait(), s = sink.wait()
            try #require(f.status == 0, "\(f.stderr)")
            let fj = try f.json()
            let drops = fj["drops"] as? [String: Int] ?? [:]
            let rx = fj["rx_packets"] as? Int ?? 0, tx = fj["tx_packets"] as? Int ?? 0
            #expect(rx == tx + drops.values.reduce(0, +), "every received packet was sent or dropped by a named cause")
            #expect(fj["frames_balanced"] as? Bool == true)
            #expect(try s.json()["packets"] as? Int == 500, "the lane kept forwarding after the flood")
        }
    }
}

extension IntegrationTests.Reliability {
    /// `gen --rx --metrics`: the latency histogram is served while the lanes record
    /// into it, scraped again and again up to the run's end (the report frees the
    /// histograms only after the server has stopped). Under ThreadSanitizer (CI)
    /// any race between the lanes, the metrics thread and the report fails the run.
    @Test func genLatencyHistogramIsScrapedUntilTheEnd() throws {
        try withTestbed(queues: 2) { tb in
            let port = 21000 + Int(getpid() % 1000)
            let fwd = try Running(["fwd", "--netns", tb.dut, "d0", "--mode", "macswap", "--filter", "udp dport 9000", "--interval", "0"])
            try tb.waitForXDP(tb.dut, "d0")
            let gen = try Running(["gen", "--testbed", tb.name, "--rx", "--flows", "4", "--rss", "--rate", "\(testRate(20000))pps", "--duration", "3",
                                   "--metrics", "127.0.0.1:\(port)", "--interval", "0", "--json"])
            var counts: [Int] = []
            let deadline = Date().addingTimeInterval(30)
            while gen.process.isRunning && Date() < deadline {
                let s = try ip("netns", "exec", tb.gen, "curl", "-sS", "--max-time", "2", "http://127.0.0.1:\(port)/metrics")
                if s.status == 0, let line = s.stdout.split(separator: "\n").first(where: { $0.hasPrefix("lanes_gen_latency_seconds_count ") }),
                   let n = line.split(separator: " ").last.flatMap({ Int($0) }) {
                    counts.append(n)
                    let buckets = s.stdout.split(separator: "\n").filter { $0.hasPrefix("lanes_gen_latency_seconds_bucket{") }
                        .compactMap { $0.split(separator: " ").last.flatMap { Int($0) } }
                    #expect(buckets == buckets.sorted() && buckets.last == n, "buckets not cumulative: \(buckets) count \(n)")
                }
                usleep(50_000)
            }
            let g = gen.wait()
            fwd.signal(SIGINT)
            fwd.wait()
            try #require(g.status == 0, "\(g.stderr)")
            #expect(counts.count >= 5, "scrapes that served the histogram: \(counts.count)")
            #expect(counts == counts.sorted() && (counts.last ?? 0) > 0, "latency counts over the run: \(counts)")
        }
    }
}

extension IntegrationTests.Reliability {
    /// A lane whose core the kernel refuses (outside the process's cpuset) is an
    /// error at start, in one line naming the thread, the core and errno; nothing is
    /// left attached. Before, the lane ran on whatever core it got.
    @Test func aPinTheKernelRefusesIsAnErrorAtStart() throws {
        let cpuset = "/sys/fs/cgroup/cpuset"
        try #require(FileManager.default.fileExists(atPath: cpuset + "/cpuset.cpus"), "a cgroup v1 cpuset hierarchy at \(cpuset)")
        try #require(ProcessInfo.processInfo.activeProcessorCount >= 2, "two CPUs")
        let group = cpuset + "/lanes-pin-\(getpid())"
        try FileManager.default.createDirectory(atPath: group, withIntermediateDirectories: false)
        defer { _ = try? run(["rmdir", group], tool: "/usr/bin/env") }
        try "0".write(toFile: group + "/cpuset.cpus", atomically: false, encoding: .utf8)
        try "0".write(toFile: group + "/cpuset.mems", atomically: false, encoding: .utf8)
        try withTestbed(queues: 2) { tb in
            // The shell moves itself into the cpuset (CPU 0 only), then becomes lanes.
            let o = try run(["-c", "echo $$ > \(group)/tasks && exec \"$0\" \"$@\"", lanesBinary, "drop", "d0", "--netns", tb.dut,
                             "--queues", "0-1", "--cores", "0,1", "--duration", "1", "--interval", "0"], tool: "/bin/sh")
            #expect(o.status != 0, "ran with a lane off its core")
            let lines = o.stderr.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].contains("pin thread lane1 to core 1") && lines[0].contains("errno 22"), "\(o.stderr)")
            #expect(try !tb.xdpAttached(tb.dut, "d0"), "a program was left attached")
        }
    }
}

extension IntegrationTests.Reliability {
    /// Faults a device brings mid-run that would leave the lanes counting nothing, or
    /// part: the program detached by someone else (lanes and the XDP path), queues
    /// added that no lane serves (`ethtool -L` up, the lanes having taken every queue;
    /// down past a served queue the kernel refuses while the sockets are bound), the
    /// MTU raised past the sockets. Each ends the run within 1 s: the report (exit
    /// reason "fault", what was counted so far), then one line naming the fault and a
    /// non-zero exit; nothing of the run's is left attached.
    @Test(arguments: ["xdp off", "channels", "mtu", "xdp off on the xdp path", "xdp off under the pipeline", "xdp off under the sink",
                      "xdp off under gen's XDP receiver"])
    func aDeviceFaultEndsTheRunAtOnceWithItsReport(fault: String) throws {
        try withTestbed(queues: fault == "channels" ? 4 : 2) { tb in
            let xdpPath = fault.hasSuffix("xdp path"), pipeline = fault.hasSuffix("pipeline"), sink = fault.hasSuffix("sink")
            let receiver = fault.hasSuffix("receiver")
            if fault == "channels" {
                let two = try ip("netns", "exec", tb.dut, "ethtool", "-L", "d0", "rx", "2", "tx", "2")
                try #require(two.status == 0, "\(two.stderr)")
            }
            let args = xdpPath ? ["fwd", "--testbed", tb.name, "--mode", "l3", "--path", "xdp"]
                : pipeline ? ["fwd", "--testbed", tb.name, "--mode", "l3", "--pipeline", "--workers", "0,1", "--queues", "0"]
                : sink ? ["sink", "d0", "--netns", tb.dut] : receiver ? ["gen", "d0", "--netns", tb.dut, "--rx-only", "--rx", "xdp"] : ["drop", "d0", "--netns", tb.dut]
            let run = try Running(args + ["--filter", "udp dport 9000", "--interval", "0", "--json"])
            try tb.waitForXDP(tb.dut, "d0")
            if pipeline || receiver {
                // The pipeline serves d0's queue 0: sent from g0's queue 0, which a veth delivers
                // there; the receiver counts signed packets (gen's).
                let gen = try lanes("gen", "--testbed", tb.name, "--queues", "0", "--flows", "8", "--count", "1000", "--rate", "20kpps", "--interval", "0")
                try #require(gen.status == 0, "\(gen.stderr)")
            } else {
                try tb.traffic(count: 1000, flows: 8, to: xdpPath ? "198.18.1.1" : "198.18.0.2")
            }
            usleep(300_000)
            let inject: Output
            switch fault {
            case "channels":
                let fewer = try ip("netns", "exec", tb.dut, "ethtool", "-L", "d0", "rx", "1", "tx", "1")
                #expect(fewer.status != 0 && fewer.stderr.contains("too low for existing"), "the kernel took queue 1 from its socket: \(fewer.stderr)")
                usleep(300_000)
                #expect(run.process.isRunning, "a refused ethtool -L ended the run")
                inject = try ip("netns", "exec", tb.dut, "ethtool", "-L", "d0", "rx", "4", "tx", "4")
            case "mtu": inject = try ip("-n", tb.dut, "link", "set", "d0", "mtu", "3000")
            default: inject = try ip("-n", tb.dut, "link", "set", "d0", "xdp", "off")
            }
            try #require(inject.status == 0, "\(fault): \(inject.stderr)")
            let injected = Date()
            let o = run.wait(timeout: 10)
            let took = Date().timeIntervalSince(injected)
            #expect(took < 1.0, "\(fault): the run went on \(took) s")
            #expect(o.status != 0, "\(fault): exit 0")
            let last = o.stderr.split(separator: "\n").last.map(String.init) ?? ""
            let words = fault == "channels" ? "has 4 RX queues now (ethtool -L): queue(s) 2-3 have no lane" : fault == "mtu" ? "MTU rose from 1500 to 3000" : "was detached by someone else"
            #expect(last.contains("the run ended at") && last.contains(words), "\(fault): \(o.stderr)")
            let report = try o.json()
            #expect(report["exit_reason"] as? String == "fault" && (report["fault"] as? String)?.contains(words) == true, "\(report)")
            let counted = sink ? "packets" : "rx_packets"
            #expect(report[counted] as? Int == 1000, "\(fault): what was counted before the fault: \(report[counted] ?? "?")")
            #expect(try !tb.xdpAttached(tb.dut, "d0") && !tb.xdpAttached(tb.dut, "d1"), "\(fault): a program was left attached")
        }
    }
}

extension IntegrationTests.Reliability {
    /// A link flap on gen's port (g0 down 1 s, then up) while it sends at 20 kpps
    /// through a macswap reflector: the run goes on to its duration (exit 0), each
    /// fall and return is one line, the frames the kernel held go when the link is
    /// back and the pacer pays the rest of the debt (tx_packets within 2% of the
    /// rate x duration), counting resumes (most of it comes back), the loss is
    /// exactly what was sent less what came back, and the ledger balances.
    @Test func aLinkFlapUnderGenIsWaitedOutAndCounted() throws {
        try withTestbed(queues: 2) { tb in
            let fwd = try Running(["fwd", "--netns", tb.dut, "d0", "--mode", "macswap", "--filter", "udp dport 9000", "--interval", "0"])
            try tb.waitForXDP(tb.dut, "d0")
            let gen = try Running(["gen", "--testbed", tb.name, "--tx", "xsk", "--rx", "--flows", "8", "--rate", "20kpps", "--duration", "6",
                                   "--interval", "0", "--json"])
            try tb.waitForXDP(tb.gen, "g0")
            usleep(1_500_000)
            #expect(try ip("-n", tb.gen, "link", "set", "g0", "down").status == 0)
            usleep(1_000_000)
            #expect(try ip("-n", tb.gen, "link", "set", "g0", "up").status == 0)
            let o = gen.wait(timeout: 30)
            fwd.signal(SIGINT)
            _ = fwd.wait()
            try #require(o.status == 0, "gen exited on a link flap: \(o.stderr)")
            #expect(o.stderr.contains("g0 link down at") && o.stderr.contains("g0 link up at") && o.stderr.contains("counting goes on"), "\(o.stderr)")
            let r = try o.json()
            let tx = r["tx_packets"] as? Int ?? 0, rx = r["rx_packets"] as? Int ?? 0
            #expect((r["link_down_events"] as? Int ?? 0) >= 1, "the fall was not counted")
            #expect(Double(tx) > 0.98 * 20_000 * 6, "the generator did not go on after the link came back: \(tx) sent")
            #expect(Double(rx) > 0.9 * Double(tx), "counting did not resume: \(rx) of \(tx) came back")
            #expect(r["lost"] as? Int == tx - rx, "lost \(r["lost"] ?? "?") is not sent less received (\(tx) - \(rx))")
            #expect(r["frames_balanced"] as? Bool == true)
        }
    }

    /// `ethtool -L d0 rx 4 tx 4` under a running `lanes sink d0` that started on
    /// 2 queues: counting in XDP holds no queue, so the run goes on and counts the
    /// packets on the added queues too (every one sent).
    @Test func theSinkCountsQueuesAddedMidRun() throws {
        try withTestbed(queues: 4) { tb in
            let two = try ip("netns", "exec", tb.dut, "ethtool", "-L", "d0", "rx", "2", "tx", "2")
            try #require(two.status == 0, "\(two.stderr)")
            let sink = try Running(["sink", "d0", "--netns", tb.dut, "--filter", "udp dport 9000", "--interval", "0", "--json"])
            try tb.waitForXDP(tb.dut, "d0")
            let four = try ip("netns", "exec", tb.dut, "ethtool", "-L", "d0", "rx", "4", "tx", "4")
            try #require(four.status == 0, "\(four.stderr)")
            usleep(300_000)
            try tb.traffic(count: 2000, flows: 32)
            usleep(300_000)
            sink.signal(SIGINT)
            let o = sink.wait()
            try #require(o.status == 0, "\(o.stderr)")
            let r = try o.json()
            let queues = (r["queues"] as? [[String: Any]] ?? []).filter { ($0["packets"] as? Int ?? 0) > 0 }.compactMap { $0["queue"] as? Int }
            #expect(r["packets"] as? Int == 2000, "counted \(r["packets"] ?? "?") of 2000, on queues \(queues)")
            #expect(queues.contains { $0 >= 2 }, "nothing on the added queues: \(queues)")
        }
    }

    /// `ip link set d0 down; sleep 1; ip link set d0 up` under `lanes fwd`, on both
    /// paths: the run goes on (exit 0), forwarding resumes within 2 s, and the link's
    /// fall is counted.
    @Test(arguments: ["xsk", "xdp"])
    func aLinkFlapUnderFwdIsFollowedByForwarding(path: String) throws {
        try withTestbed(queues: 2) { tb in
            let fwd = try Running(["fwd", "--testbed", tb.name, "--mode", "l3", "--path", path, "--filter", "udp dport 9000", "--interval", "0", "--json"])
            try tb.waitForXDP(tb.dut, "d0")
            try tb.traffic(count: 2000, flows: 8, to: "198.18.1.1")
            #expect(try ip("-n", tb.dut, "link", "set", "d0", "down").status == 0)
            usleep(1_000_000)
            #expect(try ip("-n", tb.dut, "link", "set", "d0", "up").status == 0)
            usleep(2_000_000)
            try tb.traffic(count: 2000, flows: 8, to: "198.18.1.1")
            usleep(500_000)
            fwd.signal(SIGINT)
            let o = fwd.wait()
            try #require(o.status == 0, "\(path): lanes fwd exited on a link flap: \(o.stderr)")
            let s = try o.json()
            #expect(s["tx_packets"] as? Int == 4000, "\(path): forwarding did not resume within 2 s: \(s["tx_packets"] ?? "?")")
            #expect((s["link_down_events"] as? Int ?? 0) >= 1, "\(path): the fall was not counted")
        }
    }
}
