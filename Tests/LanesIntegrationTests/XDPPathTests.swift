import Foundation
import Testing

/// `lanes fwd --path xdp|auto`: the forwarder in the XDP program. The forwarding
/// itself (FIB, l2, route file, both ways) is tested on both paths in ForwardTests
/// and FIBTests; here: the choice, its refusals, macswap by XDP_TX and the metrics.
extension IntegrationTests.Forwarder {
    /// On veth `--path auto` takes xdp and says why; the summary says so too.
    @Test func autoTakesXDPOnVethAndSaysWhy() throws {
        try withTestbed(queues: 2) { tb in
            let sink = try Running(["sink", "--testbed", tb.name, "--filter", "udp dport 9000", "--interval", "0", "--json"])
            try tb.waitForXDP(tb.sink, "s0")
            let fwd = try Running(["fwd", "--testbed", tb.name, "--mode", "l3", "--path", "auto", "--filter", "udp dport 9000", "--interval", "0", "--json"])
            try tb.waitForXDP(tb.dut, "d0")
            // At an MTU of 1500 the program without frags (a packet's length without a helper call).
            #expect(try tb.xdpProgramName(tb.dut, "d0") == "lanes_xdp_fwd")
            try tb.traffic(count: 3000, flows: 8, to: "198.18.1.1")
            usleep(300_000)
            fwd.signal(SIGINT); sink.signal(SIGINT)
            let f = fwd.wait(), s = sink.wait()
            try #require(f.status == 0, "\(f.stderr)")
            #expect(f.stderr.contains("path xdp (auto: veth has no AF_XDP zero-copy"), "\(f.stderr)")
            let fj = try f.json()
            #expect(fj["path"] as? String == "xdp")
            #expect(fj["tx_packets"] as? Int == 3000, "\(fj["tx_packets"] ?? "?")")
            #expect(try s.json()["packets"] as? Int == 3000)
            #expect(try !tb.xdpAttached(tb.dut, "d0") && !tb.xdpAttached(tb.dut, "d1"), "a program was left attached")
        }
    }

    /// An option only the lanes serve: `--path xdp` refuses in one line naming it,
    /// before anything is attached; `--path auto` takes the lanes and says why.
    @Test func pathXDPRefusesWhatNeedsTheLanes() throws {
        try withTestbed(queues: 2) { tb in
            for (extra, flag) in [(["--mode", "io", "--impair", "drop=10"], "--impair"), (["--mode", "io", "--pipeline"], "--pipeline"),
                                  (["--mode", "l3", "--busy-poll"], "--busy-poll"), (["--mode", "l3", "--queues", "0"], "--queues"),
                                  (["--mode", "l2", "--bind", "copy"], "--bind")] {
                let o = try run(["fwd", "--testbed", tb.name, "--path", "xdp", "--duration", "1"] + extra)
                #expect(o.status != 0, "\(extra) ran")
                let lines = o.stderr.split(separator: "\n")
                #expect(lines.count == 1 && lines[0].contains("--path xdp forwards in the XDP program: \(flag) needs the lanes"), "\(extra): \(o.stderr)")
                #expect(try !tb.xdpAttached(tb.dut, "d0"), "\(extra) left a program on d0")
            }
            let auto = try run(["fwd", "--testbed", tb.name, "--mode", "io", "--path", "auto", "--impair", "drop=10", "--duration", "0.5", "--interval", "0", "--json"])
            #expect(auto.status == 0, "\(auto.stderr)")
            #expect(auto.stderr.contains("path xsk (auto: --impair needs the lanes)"), "\(auto.stderr)")
            let bad = try run(["fwd", "--testbed", tb.name, "--mode", "l3", "--path", "xpd"])
            #expect(bad.status != 0 && bad.stderr.contains("xpd"), "\(bad.stderr)")
        }
    }

    /// A veth takes redirected frames only while its peer has NAPI (an XDP program or
    /// GRO): with GRO off on s0, d1 says it is no redirect target, and `--path xdp`
    /// refuses in one line while `--path auto` takes the lanes, which still deliver.
    @Test func anEgressThatTakesNoRedirectsIsRefusedOrAvoided() throws {
        try withTestbed(queues: 1) { tb in
            let off = try ip("netns", "exec", tb.sink, "ethtool", "-K", "s0", "gro", "off")
            try #require(off.status == 0, "\(off.stderr)")
            let o = try run(["fwd", "--testbed", tb.name, "--mode", "l3", "--path", "xdp", "--duration", "1"])
            #expect(o.status != 0 && o.stderr.split(separator: "\n").count == 1
                    && o.stderr.contains("d1 takes no redirected frames"), "\(o.stderr)")
            let fwd = try Running(["fwd", "--testbed", tb.name, "--mode", "l3", "--path", "auto", "--filter", "udp dport 9000", "--interval", "0", "--json"])
            try tb.waitForXDP(tb.dut, "d0")
            try tb.traffic(count: 2000, flows: 4, to: "198.18.1.1")
            usleep(300_000)
            fwd.signal(SIGINT)
            let f = fwd.wait()
            try #require(f.status == 0, "\(f.stderr)")
            #expect(f.stderr.contains("path xsk (auto: d1 takes no redirected frames"), "\(f.stderr)")
            let fj = try f.json()
            #expect(fj["path"] as? String == "xsk" && fj["tx_packets"] as? Int == 2000, "\(fj["path"] ?? "?") \(fj["tx_packets"] ?? "?")")
        }
    }

    /// macswap by XDP_TX: every signed packet comes back to the generator's receiver.
    @Test func macswapInXDPReflectsEveryPacket() throws {
        try withTestbed(queues: 2) { tb in
            let fwd = try Running(["fwd", "--netns", tb.dut, "d0", "--mode", "macswap", "--path", "xdp", "--filter", "udp dport 9000", "--interval", "0", "--json"])
            try tb.waitForXDP(tb.dut, "d0")
            let gen = try lanes("gen", "--testbed", tb.name, "--rx", "--tx", "xsk", "--count", "5000", "--rate", "50kpps", "--flows", "8",
                                "--interval", "0", "--json", timeout: 60)
            try #require(gen.status == 0, "\(gen.stderr)")
            fwd.signal(SIGINT)
            let f = fwd.wait()
            try #require(f.status == 0, "\(f.stderr)")
            let gj = try gen.json(), fj = try f.json()
            #expect(gj["rx_packets"] as? Int == 5000 && gj["lost"] as? Int == 0, "back at g0: \(gj["rx_packets"] ?? "?"), lost \(gj["lost"] ?? "?")")
            #expect(fj["path"] as? String == "xdp" && fj["tx_packets"] as? Int == 5000, "\(fj["tx_packets"] ?? "?")")
        }
    }

    /// `--metrics` on the xdp path: the same series, from the program's counters,
    /// and promtool finds the text clean.
    @Test func theXDPPathServesTheSameMetrics() throws {
        try withTestbed(queues: 2) { tb in
            let port = 19300 + Int(getpid() % 500)
            let fwd = try Running(["fwd", "--testbed", tb.name, "--mode", "l3", "--path", "xdp", "--filter", "udp dport 9000",
                                   "--metrics", "127.0.0.1:\(port)", "--interval", "0", "--json"])
            try tb.waitForXDP(tb.dut, "d0")
            try tb.traffic(count: 3000, flows: 8, to: "198.18.1.1")
            usleep(500_000)
            let scrape = try MetricsScrape(tb.dut, port: port)
            fwd.signal(SIGINT)
            let f = fwd.wait()
            try #require(f.status == 0, "\(f.stderr)")
            try #require(scrape.output.status == 0, "curl: \(scrape.output.stderr)")
            #expect(scrape.sum("lanes_rx_packets_total") == 3000 && scrape.sum("lanes_tx_packets_total") == 3000
                    && scrape.sum("lanes_xdp_forwarded_total") == 3000, "\(scrape.text)")
            #expect(scrape.text.contains("lanes_drops_total{") && scrape.text.contains("cause=\"blackhole\""))
            let check = try scrape.promtool()
            #expect(check.status == 0, "promtool: \(check.stdout) \(check.stderr)")
        }
    }
}
