import Foundation
import Testing

/// Real traffic over a real netns+veth testbed, through the real XDP program and
/// AF_XDP sockets. One at a time: they share two cores.
@Suite(.serialized, .enabled(if: Privileged.available, Privileged.reason))
struct IntegrationTests {

    @Suite(.serialized) struct Foundation {
        @Test func testbedUpInfoDown() throws {
            let name = try withTestbed(queues: 2) { tb -> String in
                let o = try lanes("info", "d0", "--netns", tb.dut, "--json")
                try #require(o.status == 0, "\(o.stderr)")
                let info = try JSONSerialization.jsonObject(with: Data(o.stdout.utf8)) as! [String: Any]
                #expect(info["driver"] as? String == "veth")
                #expect(info["rx_queues"] as? Int == 2)
                #expect(info["tx_queues"] as? Int == 2)
                #expect(info["mac"] as? String == "02:4c:00:00:00:02")
                #expect((info["xdp_features"] as? [String])?.contains("native") == true)
                #expect((info["verdict"] as? String)?.contains("not an enhanced-networking driver") == true)
                // up again is harmless
                let again = try lanes("testbed", "up", "--queues", "2", "--name", tb.name)
                #expect(again.status == 0)
                #expect(again.stdout.contains("already up"))
                let status = try lanes("testbed", "status", "--name", tb.name, "--json")
                #expect(status.stdout.contains("\"up\" : true") && status.stdout.contains("\"kind\" : \"veth\""), "\(status.stdout)")
                // exec runs a command in a role's namespace, with its status.
                let exec = try lanes("testbed", "exec", "dut", "--name", tb.name, "--", "sh", "-c", "ip -br link show d0; exit 3")
                #expect(exec.status == 3 && exec.stdout.hasPrefix("d0"), "\(exec.stdout) \(exec.stderr)")
                return tb.name
            }
            let ns = try ip("netns", "list").stdout
            #expect(!ns.contains(name), "namespaces left behind: \(ns)")
        }

        /// The XDP MTU `lanes info` gives veth is the kernel's: at it, a program that is
        /// not frags-aware attaches natively; one byte more and only generic mode takes it.
        @Test func vethXDPMTULimitIsTheKernels() throws {
            try withTestbed(queues: 1) { tb in
                let info = try JSONSerialization.jsonObject(with: Data(try lanes("info", "d0", "--netns", tb.dut, "--json").stdout.utf8)) as? [String: Any]
                let limit = try #require(info?["xdp_mtu_limit"] as? Int)
                #expect(info?["ec2_shaping"] == nil && (info?["allowance_counters"] as? [String: Any])?.isEmpty == true)
                let limitMB = try #require(info?["xdp_mtu_limit_multi_buffer"] as? Int)
                #expect(limitMB == 65535)
                // Lanes' program is frags-aware: past the single-buffer limit it still
                // attaches native, and the sockets bind multi-buffer (the frames then
                // span UMEM frames). A program without frags goes generic there: the
                // kernel's rule the limit reports.
                for (mtu, multiBuffer) in [(limit, true), (limit + 1, true), (1500, false), (9000, true)] {
                    _ = try ip("-n", tb.gen, "link", "set", "g0", "mtu", "\(mtu)")
                    _ = try ip("-n", tb.dut, "link", "set", "d0", "mtu", "\(mtu)")
                    let o = try lanes("drop", "d0", "--netns", tb.dut, "--duration", "0.5", "--interval", "0", "--json")
                    try #require(o.status == 0, "\(o.stderr)")
                    #expect(try o.json()["xdp_mode"] as? String == "native", "MTU \(mtu): \(o.lastLine)")
                    #expect(try o.json()["multi_buffer"] as? Bool == multiBuffer, "MTU \(mtu): \(o.lastLine)")
                }
            }
        }

        @Test func infoOnMissingInterfaceIsOneLineError() throws {
            try withTestbed(queues: 1) { tb in
                let o = try lanes("info", "nosuch0", "--netns", tb.dut)
                #expect(o.status != 0)
                #expect(o.stderr.split(separator: "\n").count == 1)
                #expect(o.stderr.contains("not found"))
            }
        }

        @Test func pingCrossesWhileProgramAttached() throws {
            try withTestbed(queues: 2) { tb in
                let run = try Running(["drop", "--netns", tb.dut, "d0", "--filter", "udp", "--duration", "8", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                let ping = try run_ping(tb.gen, "198.18.0.2")
                #expect(ping.status == 0, "ping failed while lanes ran with a UDP filter: \(ping.stdout)")
                run.signal(SIGINT)
                let out = run.wait()
                #expect(out.status == 0, "\(out.stderr)")
                #expect(try !tb.xdpAttached(tb.dut, "d0"))
            }
        }
    }

    @Suite(.serialized) struct Engine {
        @Test func dropCountsEveryPacketOverSeveralLanes() throws {
            try withTestbed(queues: 2) { tb in
                let k = 20000
                let run = try Running(["drop", "--netns", tb.dut, "d0", "--filter", "udp dport 9000", "--duration", "30", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                try tb.traffic(count: k, flows: 64)
                usleep(500_000)
                run.signal(SIGINT)
                let out = run.wait()
                try #require(out.status == 0, "\(out.stderr)")
                let s = try out.json()
                #expect(s["rx_packets"] as? Int == k)
                #expect(s["exit_reason"] as? String == "SIGINT")
                #expect(s["frames_balanced"] as? Bool == true)
                #expect(s["ec2_shaping"] == nil && s["cpu_s"] != nil, "veth has no allowance counters: ec2_shaping is absent, not zero")
                let laneList = try #require(s["lanes"] as? [[String: Any]])
                #expect(laneList.count == 2)
                let busy = laneList.filter { ($0["rx_packets"] as? Int ?? 0) > 0 }
                #expect(busy.count == 2, "only \(busy.count) lane(s) received")
                let redirected = laneList.reduce(0) { $0 + (($1["xdp"] as? [String: Any])?["redirected"] as? Int ?? 0) }
                #expect(redirected == k)
                #expect(try !tb.xdpAttached(tb.dut, "d0"))
            }
        }

        /// The live frame accounting is a count of frames: never negative, and a few
        /// bursts at most on a healthy lane, sampled every 20 ms under load both ways.
        @Test func liveFramesUnaccountedIsNeverNegative() throws {
            try withTestbed(queues: 2) { tb in
                let fwd = try Running(["fwd", "--netns", tb.dut, "d0", "--mode", "macswap", "--filter", "udp dport 9000",
                                       "--interval", "0.02", "--json", "--duration", "4"])
                try tb.waitForXDP(tb.dut, "d0")
                let gen = try lanes("gen", "--testbed", tb.name, "--rx", "--tx", "xsk", "--rate", "300kpps", "--duration", "2", "--flows", "8",
                                    "--rss", "--interval", "0", "--json", timeout: 30)
                #expect(gen.status == 0, "\(gen.stderr)")
                let out = fwd.wait(timeout: 30)
                try #require(out.status == 0, "\(out.stderr)")
                let lines = out.stdout.split(separator: "\n").dropLast().compactMap {
                    try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
                }
                let samples = lines.compactMap { $0["frames_unaccounted"] as? Int }
                #expect(samples.count > 20, "\(samples.count) interval lines")
                #expect(samples.allSatisfy { $0 >= 0 }, "negative: \(samples.filter { $0 < 0 })")
                #expect(samples.allSatisfy { $0 <= 1024 }, "max \(samples.max() ?? 0)")
            }
        }

        /// SIGKILL, then start again at once, 20 times: the killed process's sockets
        /// are released asynchronously, and the restart waits for them (EBUSY retry).
        @Test func restartRightAfterSIGKILLWorks20TimesInARow() throws {
            try withTestbed(queues: 2) { tb in
                func startAndWaitRunning() throws -> Running {
                    let drop = try Running(["drop", "d0", "--netns", tb.dut, "--interval", "0.05", "--json", "--duration", "60"])
                    let deadline = Date().addingTimeInterval(15)
                    while Date() < deadline && drop.process.isRunning
                            && !drop.stdoutSoFar.contains("elapsed_s") { usleep(10_000) }
                    return drop
                }
                for cycle in 0..<20 {
                    let drop = try startAndWaitRunning()
                    let running = drop.process.isRunning
                    drop.signal(SIGKILL)
                    let o = drop.wait()
                    try #require(running && o.stdout.contains("elapsed_s"), "cycle \(cycle): did not start: \(o.stderr)")
                }
                let last = try startAndWaitRunning()
                last.signal(SIGINT)
                let o = last.wait()
                #expect(o.status == 0, "\(o.stderr)")
                #expect(try !tb.xdpAttached(tb.dut, "d0"))
            }
        }

        @Test func macswapReturnsEveryPacket() throws {
            try withTestbed(queues: 2) { tb in
                let k = 10000
                let sink = try Running(["sink", "g0", "--netns", tb.gen, "--filter", "udp dport 9000", "--duration", "30", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.gen, "g0")
                let fwd = try Running(["fwd", "--netns", tb.dut, "d0", "--mode", "macswap", "--filter", "udp dport 9000", "--duration", "30", "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                try tb.traffic(count: k, flows: 32)
                usleep(500_000)
                fwd.signal(SIGINT)
                sink.signal(SIGINT)
                let f = fwd.wait(), s = sink.wait()
                try #require(f.status == 0 && s.status == 0, "\(f.stderr) \(s.stderr)")
                let fj = try f.json(), sj = try s.json()
                #expect(fj["rx_packets"] as? Int == k)
                #expect(fj["tx_packets"] as? Int == k)
                #expect(fj["frames_balanced"] as? Bool == true)
                #expect(sj["packets"] as? Int == k, "gen counted \(sj["packets"] ?? "?") returned packets")
            }
        }

        @Test func sigintDetachesWithinOneSecond() throws {
            try withTestbed(queues: 2) { tb in
                let run = try Running(["drop", "--netns", tb.dut, "d0", "--interval", "0"])
                try tb.waitForXDP(tb.dut, "d0")
                let t0 = Date()
                run.signal(SIGINT)
                let out = run.wait(timeout: 5)
                let took = Date().timeIntervalSince(t0)
                #expect(out.status == 0, "\(out.stderr)")
                #expect(took < 1.0, "shutdown took \(took) s")
                #expect(try !tb.xdpAttached(tb.dut, "d0"))
            }
        }

        @Test func staleProgramFromKilledRunIsReplaced() throws {
            try withTestbed(queues: 2) { tb in
                let first = try Running(["drop", "--netns", tb.dut, "d0", "--interval", "0"])
                try tb.waitForXDP(tb.dut, "d0")
                first.signal(SIGKILL)
                first.wait()
                #expect(try tb.xdpAttached(tb.dut, "d0"), "a killed run should leave its program behind")
                let second = try Running(["drop", "--netns", tb.dut, "d0", "--filter", "udp dport 9000", "--duration", "30", "--interval", "0", "--json"])
                usleep(1_500_000)
                try tb.traffic(count: 2000, flows: 8)
                usleep(300_000)
                second.signal(SIGINT)
                let out = second.wait()
                try #require(out.status == 0, "\(out.stderr)")
                #expect(try out.json()["rx_packets"] as? Int == 2000)
                #expect(out.stderr.contains("replacing the XDP program"), "the replacement should be said: \(out.stderr)")
                #expect(try !tb.xdpAttached(tb.dut, "d0"))
            }
        }

    }
}

extension IntegrationTests.Engine {
    /// One owner per interface: a second command (either order, drop or sink) refuses in
    /// one line naming the first one's pid, and the first keeps counting everything.
    @Test(arguments: [(["drop", "--filter", "udp dport 9000"], ["sink", "--filter", "udp dport 9000"]),
                      (["sink", "--filter", "udp dport 9000"], ["drop", "--filter", "udp dport 9000"]),
                      (["sink", "--filter", "udp dport 9000"], ["sink", "--filter", "udp dport 9000"])])
    func secondCommandOnAnInterfaceRefusesAndTheFirstKeepsCounting(first: [String], second: [String]) throws {
        try withTestbed(queues: 2) { tb in
            let a = try Running([first[0], "d0", "--netns", tb.dut] + first.dropFirst() + ["--duration", "30", "--interval", "0", "--json"])
            try tb.waitForXDP(tb.dut, "d0")
            let b = try run([second[0], "d0", "--netns", tb.dut] + second.dropFirst() + ["--duration", "2", "--interval", "0", "--json"])
            #expect(b.status != 0)
            #expect(b.stderr.contains("in use by") && b.stderr.contains("pid \(a.process.pid)"), "\(b.stderr)")
            #expect(b.stderr.split(separator: "\n").count == 1, "\(b.stderr)")
            #expect(try tb.xdpAttached(tb.dut, "d0"), "the refused command took the first one's program away")
            try tb.traffic(count: 1000, flows: 8)
            usleep(300_000)
            a.signal(SIGINT)
            let out = a.wait()
            try #require(out.status == 0, "\(out.stderr)")
            let j = try out.json()
            #expect((j["rx_packets"] as? Int ?? j["packets"] as? Int) == 1000, "the first command counted \(j)")
            #expect(try !tb.xdpAttached(tb.dut, "d0"))
        }
    }

    /// The default filter takes UDP only: while `lanes drop d0` runs with its defaults,
    /// ping and a TCP connection across d0 work, and UDP is still taken.
    @Test func defaultFilterLeavesPingAndTCPToTheKernel() throws {
        try withTestbed(queues: 2) { tb in
            let listener = try Running(["ip", "netns", "exec", tb.dut, "python3", "-c", """
                import socket
                s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("198.18.0.2", 2222)); s.listen(1); s.settimeout(20)
                c, _ = s.accept(); c.sendall(c.recv(100).upper()); c.close()
                """], tool: "/usr/bin/env")
            let drop = try Running(["drop", "d0", "--netns", tb.dut, "--duration", "30", "--interval", "0", "--json"])
            try tb.waitForXDP(tb.dut, "d0")
            let ping = try run_ping(tb.gen, "198.18.0.2")
            #expect(ping.status == 0, "ping failed while lanes drop ran with its default filter: \(ping.stdout)")
            let tcp = try run(["ip", "netns", "exec", tb.gen, "python3", "-c", """
                import socket
                c = socket.create_connection(("198.18.0.2", 2222), timeout=5); c.sendall(b"ssh"); print(c.recv(100).decode())
                """], tool: "/usr/bin/env", timeout: 20)
            #expect(tcp.status == 0 && tcp.stdout.contains("SSH"), "TCP across d0 failed: \(tcp.stdout) \(tcp.stderr)")
            listener.wait(timeout: 5)
            try tb.traffic(count: 500, flows: 4)
            usleep(300_000)
            drop.signal(SIGINT)
            let out = drop.wait()
            try #require(out.status == 0, "\(out.stderr)")
            #expect(try out.json()["rx_packets"] as? Int == 500)
            #expect(try out.json()["filter"] as? String == "udp")
        }
    }
}

func run_ping(_ ns: String, _ addr: String) throws -> Output {
    try run(["ip", "netns", "exec", ns, "ping", "-c", "3", "-i", "0.2", "-W", "2", addr], tool: "/usr/bin/env")
}

extension IntegrationTests.Engine {
    /// A program that is not Lanes' is refused without --force, and replaced with it.
    @Test func foreignProgramNeedsForce() throws {
        try withTestbed(queues: 1) { tb in
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lanes-foreign-\(getpid())")
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: dir) }
            let src = dir.appendingPathComponent("foreign.c"), obj = dir.appendingPathComponent("foreign.o")
            try """
            #include <linux/bpf.h>
            #include <bpf/bpf_helpers.h>
            SEC("xdp") int someone_else(struct xdp_md *ctx) { return XDP_PASS; }
            char _license[] SEC("license") = "GPL";
            """.write(to: src, atomically: true, encoding: .utf8)
            let clang = ["/usr/bin/clang-14", "/usr/bin/clang"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "clang"
            let cc = try run(["-target", "bpf", "-O2", "-g", "-I/usr/include/x86_64-linux-gnu", "-c", src.path, "-o", obj.path], tool: clang)
            try #require(cc.status == 0, "clang: \(cc.stderr)")
            let attach = try ip("-n", tb.dut, "link", "set", "dev", "d0", "xdpdrv", "obj", obj.path, "sec", "xdp")
            try #require(attach.status == 0, "ip link set xdp: \(attach.stderr)")
            let refused = try lanes("drop", "d0", "--netns", tb.dut, "--duration", "1", "--interval", "0")
            #expect(refused.status != 0)
            #expect(refused.stderr.split(separator: "\n").count == 1, "\(refused.stderr)")
            #expect(refused.stderr.contains("someone_else") && refused.stderr.contains("--force"), "\(refused.stderr)")
            #expect(try tb.xdpAttached(tb.dut, "d0"), "the refused run must leave the foreign program in place")
            let forced = try lanes("drop", "d0", "--netns", tb.dut, "--duration", "1", "--interval", "0", "--force", "--json")
            #expect(forced.status == 0, "\(forced.stderr)")
            #expect(try !tb.xdpAttached(tb.dut, "d0"))
        }
    }
}
