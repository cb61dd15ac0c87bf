import Foundation
import Testing

extension IntegrationTests.Reliability {
    /// gen -> lanes fwd (l3) -> receiver at the highest lossless rate for
    /// LANES_SOAK_SECONDS (60 in CI; scripts/soak 600 for the published figure).
    /// Every interval: no counter goes backwards and the frames add up; memory
    /// stays flat after warm-up; at the end sent = received + counted drops.
    @Test func soak() throws {
        let seconds = Int(ProcessInfo.processInfo.environment["LANES_SOAK_SECONDS"] ?? "") ?? 60
        try withTestbed(queues: 2) { tb in
            /// A forwarder of its own for each phase, so that the soak's counters
            /// (XDP_STATISTICS, drops by cause, frames) cover the soak alone and not
            /// the unpaced trial that looked for the rate.
            func forwarder() throws -> Running {
                let fwd = try Running(["fwd", "--testbed", tb.name, "--mode", "l3", "--filter", "udp dport 9000", "--interval", "1", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                return fwd
            }
            let search = try forwarder()
            /// Packets the veths themselves dropped (ip -s link), all four ports.
            func vethDrops() throws -> Int {
                var n = 0
                for (ns, dev) in [(tb.gen, "g0"), (tb.dut, "d0"), (tb.dut, "d1"), (tb.sink, "s0")] {
                    let o = try ip("-n", ns, "-s", "-j", "link", "show", dev)
                    let j = (try JSONSerialization.jsonObject(with: Data(o.stdout.utf8)) as? [[String: Any]])?.first
                    let st = j?["stats64"] as? [String: Any]
                    n += ((st?["rx"] as? [String: Any])?["dropped"] as? Int ?? 0) + ((st?["tx"] as? [String: Any])?["dropped"] as? Int ?? 0)
                }
                return n
            }
            var receiverKernelDrops = 0
            func trial(rate: String?, duration: Int) throws -> (sent: Int, received: Int, lost: Int) {
                let rx = try Running(["gen", "s0", "--netns", tb.sink, "--rx-only", "--flows", "8", "--dst-mac", "02:4c:00:00:01:02",
                                      "--interval", "0", "--json"])
                try tb.waitForXDP(tb.sink, "s0")
                var args = ["gen", "--testbed", tb.name, "--flows", "8", "--rss", "--duration", "\(duration)", "--interval", "0", "--json"]
                if let rate { args += ["--rate", rate] }
                let g = try run(args, timeout: Double(duration) + 60)
                usleep(500_000)
                rx.signal(SIGINT)
                let r = try rx.wait().json()
                receiverKernelDrops = r["kernel_rx_dropped"] as? Int ?? 0
                let sent = try g.json()["tx_packets"] as? Int ?? -1
                return (sent, r["rx_packets"] as? Int ?? -1, sent - (r["rx_packets"] as? Int ?? 0))
            }
            // The highest lossless rate: from the unpaced maximum down, 3 s per step.
            let top = try trial(rate: nil, duration: 2)
            var rate = 0
            for fraction in [0.7, 0.5, 0.35, 0.25, 0.15] {
                let r = Int(Double(top.received) / 2 * fraction)
                if try trial(rate: "\(r)", duration: 3).lost == 0 { rate = r; break }
            }
            search.signal(SIGINT)
            let searched = search.wait(timeout: 30)
            try #require(searched.status == 0, "\(searched.stderr)")
            try #require(rate > 0, "no lossless rate found below \(top.received / 2) pps")
            let fwd = try forwarder()
            let vethBefore = try vethDrops()
            let soak = try trial(rate: "\(rate)", duration: seconds)
            let veth = try vethDrops() - vethBefore
            fwd.signal(SIGINT)
            let out = fwd.wait(timeout: 30)
            try #require(out.status == 0, "\(out.stderr)")
            let lines = out.stdout.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            let intervals = lines.filter { $0["elapsed_s"] != nil }
            let summary = try #require(lines.last)
            #expect(intervals.count >= seconds)
            var last = (rx: 0, tx: 0, drops: 0), backwards = 0, badFrames = 0
            var rss: [Int] = []
            for l in intervals {
                let rx = l["rx_packets"] as? Int ?? 0, tx = l["tx_packets"] as? Int ?? 0, d = l["drops"] as? Int ?? 0
                if rx < last.rx || tx < last.tx || d < last.drops { backwards += 1 }
                last = (rx, tx, d)
                // Frames in the kernel's hands (TX taken, not yet completed; fill taken, not
                // yet on RX) are unaccounted from outside: at these rates some hundreds on
                // two lanes, never negative. A leak grows past any bound within the soak.
                let un = l["frames_unaccounted"] as? Int ?? Int.max
                if un < 0 || un > 1024 { badFrames += 1 }
                rss.append(l["rss_bytes"] as? Int ?? 0)
            }
            #expect(backwards == 0, "a counter went backwards")
            #expect(badFrames == 0, "frames did not add up in \(badFrames) intervals")
            let warm = rss.dropFirst(max(5, rss.count / 6))
            let growth = Double((warm.max() ?? 0) - (warm.min() ?? 0)) / Double(max(warm.min() ?? 1, 1))
            #expect(growth < 0.01, "resident memory grew \(growth * 100)% after warm-up")
            let drops = (summary["drops"] as? [String: Int] ?? [:]).values.reduce(0, +)
            let kernelDrops = (summary["xsk"] as? [String: Int])?["rx_dropped"] ?? 0
            // Every loss is counted: by the lanes (by cause), or by the kernel in the veths'
            // own drop counters, which include the XDP redirect failures that
            // XDP_STATISTICS reports at the forwarder and the receiver, and the veth rings
            // that overflowed when a core was busy elsewhere.
            #expect(soak.sent == soak.received + drops + veth,
                    "sent \(soak.sent) != received \(soak.received) + lanes drops \(drops) + veth dropped \(veth) (of which XDP_STATISTICS: forwarder \(kernelDrops), receiver \(receiverKernelDrops))")
            #expect(kernelDrops + receiverKernelDrops <= veth)
            #expect(summary["frames_balanced"] as? Bool == true)
            let figures: [String: Any] = ["seconds": seconds, "rate_pps": rate, "sent": soak.sent, "received": soak.received,
                                          "drops_by_cause": summary["drops"] ?? [:], "kernel_rx_dropped": kernelDrops,
                                          "receiver_kernel_rx_dropped": receiverKernelDrops, "veth_dropped": veth,
                                          "rss_start_bytes": warm.first ?? 0, "rss_end_bytes": warm.last ?? 0,
                                          "rss_growth_after_warmup": growth]
            if let d = try? JSONSerialization.data(withJSONObject: figures, options: [.sortedKeys]) {
                print("soak: " + String(decoding: d, as: UTF8.self))
            }
        }
    }
}
