import Foundation
import Testing

func VMTestbedExists(_ name: String) -> Bool {
    FileManager.default.fileExists(atPath: "/run/lanes/vm-\(name)") || ((try? ip("netns", "list").stdout.contains("\(name)-gen")) ?? false)
}

extension IntegrationTests {
    /// The VM testbed: the DUT as a QEMU guest (TCG here) on virtio_net (d0) and
    /// igb (d1), with the host's lanes inside. Each test boots its own guest.
    @Suite(.serialized) struct VM {
        /// A VM testbed of our own, always torn down.
        static func withVM<T>(queues: Int = 2, _ body: (String) throws -> T) throws -> T {
            let name = "lv\(getpid() % 10000)x\(counter.next())"
            let up = try lanes("testbed", "up", "--vm", "--name", name, "--queues", "\(queues)", timeout: 300)
            defer {
                let down = try? lanes("testbed", "down", "--name", name, timeout: 60)
                if down?.status != 0 { Issue.record("testbed down failed: \(down?.stderr ?? "?")") }
            }
            try #require(up.status == 0, "testbed up --vm failed: \(up.stderr) \(up.stdout)")
            return try body(name)
        }

        static func exec(_ name: String, _ command: String..., timeout: Double = 120) throws -> Output {
            try run(["testbed", "exec", "dut", "--name", name, "--"] + command, timeout: timeout)
        }

        /// Up (twice: harmless), status, a command's output and exit status through
        /// exec, and down after QEMU was killed with SIGKILL: nothing is left.
        @Test func upExecStatusAndDownAfterAKilledGuest() throws {
            let name = "lv\(getpid() % 10000)x\(counter.next())"
            defer { _ = try? lanes("testbed", "down", "--name", name, timeout: 60) }
            let up = try lanes("testbed", "up", "--vm", "--name", name, timeout: 300)
            try #require(up.status == 0, "\(up.stderr)")
            #expect(up.stdout.contains("under tcg") || up.stdout.contains("under kvm"), "which accelerator: \(up.stdout)")
            let again = try lanes("testbed", "up", "--vm", "--name", name, timeout: 60)
            #expect(again.status == 0 && again.stdout.contains("already up"), "\(again.stdout) \(again.stderr)")
            let st = try lanes("testbed", "status", "--name", name, "--json")
            let s = try #require(try JSONSerialization.jsonObject(with: Data(st.stdout.utf8)) as? [String: Any], "\(st.stdout) \(st.stderr)")
            #expect(s["kind"] as? String == "vm" && s["up"] as? Bool == true, "\(s)")
            let nics = try #require(s["nics"] as? [[String: Any]])
            #expect(nics.map { "\($0["guest"] ?? "")=\($0["driver"] ?? "")" } == ["d0=virtio_net", "d1=igb"], "\(nics)")
            #expect((s["guest_kernel"] as? String ?? "").hasPrefix("7.3"), "\(s)")
            let uname = try Self.exec(name, "uname", "-r")
            #expect(uname.status == 0 && uname.stdout.hasPrefix("7.3"), "\(uname.stdout) \(uname.stderr)")
            let failing = try Self.exec(name, "sh", "-c", "echo out; echo err >&2; exit 7")
            #expect(failing.status == 7 && failing.stdout == "out\n" && failing.stderr == "err\n", "\(failing)")
            let info = try Self.exec(name, lanesBinary, "info", "d0", "--json")
            #expect(info.status == 0, "\(info.stderr)")
            let i = try #require(try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any], "\(info.stdout)")
            #expect(i["driver"] as? String == "virtio_net", "\(i)")
            // A killed QEMU leaves a stale pid file and the taps: down removes all of it.
            let pid = try #require(s["qemu_pid"] as? Int)
            kill(pid_t(pid), SIGKILL)
            usleep(300_000)
            let down = try lanes("testbed", "down", "--name", name, timeout: 60)
            #expect(down.status == 0, "\(down.stderr)")
            #expect(try !ip("netns", "list").stdout.contains("\(name)-gen"))
            #expect(!FileManager.default.fileExists(atPath: "/run/lanes/vm-\(name)"))
        }

        /// SR-IOV on the guest's igb: 2 VFs (igbvf), `lanes info` on the PF lists
        /// them and on a VF names the PF; a lane command on a VF (no native XDP)
        /// attaches generic-mode XDP under auto, saying so, binds copy mode and
        /// leaves nothing attached. (Under QEMU 10.0.2 the VFs' links stay down,
        /// "PF still in reset state": no traffic reaches them here.)
        @Test func sriovVirtualFunctionsOnIgb() throws {
            try Self.withVM { name in
                let make = try Self.exec(name, "sh", "-c", """
                    echo 2 > /sys/class/net/d1/device/sriov_numvfs && modprobe igbvf && sleep 2 &&
                    n=0; for v in $(ls /sys/class/net/d1/device/ | grep virtfn | sort); do
                      i=$(ls /sys/class/net/d1/device/$v/net); ip link set $i address 02:4c:00:00:02:0$n && ip link set $i name v$n && ip link set v$n up; n=$((n+1))
                    done; ls /sys/class/net
                    """)
                try #require(make.status == 0, "\(make.stderr)")
                #expect(make.stdout.contains("v0") && make.stdout.contains("v1"), "\(make.stdout)")
                let pf = try #require(try JSONSerialization.jsonObject(with: Data(try Self.exec(name, lanesBinary, "info", "d1", "--json").stdout.utf8)) as? [String: Any])
                #expect((pf["sriov"] as? String ?? "").hasPrefix("physical-function (2 VFs)"), "\(pf["sriov"] ?? "")")
                #expect(pf["virtual_functions"] as? [String] == ["v0", "v1"], "\(pf["virtual_functions"] ?? "")")
                let vf = try #require(try JSONSerialization.jsonObject(with: Data(try Self.exec(name, lanesBinary, "info", "v0", "--json").stdout.utf8)) as? [String: Any])
                #expect(vf["driver"] as? String == "igbvf" && vf["sriov"] as? String == "virtual-function" && vf["physical_function"] as? String == "d1", "\(vf)")
                #expect((vf["notes"] as? [String] ?? []).contains { $0.hasPrefix("igbvf: no native XDP") })
                let drop = try Self.exec(name, lanesBinary, "drop", "v0", "--duration", "2", "--interval", "0", "--json")
                #expect(drop.status == 0, "\(drop.stderr)")
                #expect(drop.stderr.contains("v0 has no native XDP") && drop.stderr.contains("generic-mode XDP"), "\(drop.stderr)")
                let j = try drop.json()
                #expect(j["bind_mode"] as? String == "copy" && j["frames_balanced"] as? Bool == true, "\(j)")
                let native = try Self.exec(name, lanesBinary, "drop", "v0", "--xdp", "native", "--duration", "1")
                #expect(native.status != 0 && native.stderr.split(separator: "\n").count == 1 && native.stderr.contains("--xdp generic"), "\(native.stderr)")
                #expect(!(try Self.exec(name, "ip", "link", "show", "v0").stdout.contains("xdp")), "a program was left on v0")
            }
        }

        /// `lanes scale --vm --lanes 1,2 --flows 1,16`: the dut in the guest on
        /// virtio_net, its channels set per lane count, the flows planned by its own
        /// RSS: one flow lands on one queue, 16 flows on both; every point is marked
        /// emulated (TCG), in the table and the JSON; nothing is left behind.
        @Test func scaleRunsWithTheDutInTheGuest() throws {
            let name = "lvs\(getpid() % 10000)"
            defer { _ = try? lanes("testbed", "down", "--name", name, timeout: 60) }
            let o = try lanes("scale", "--vm", "--testbed", name, "--lanes", "1,2", "--flows", "1,16", "--repeat", "1", "--duration", "1",
                              "--warmup", "0.3", "--rate", "20kpps", "--json", timeout: 400)
            try #require(o.status == 0, "\(o.stderr)")
            let r = try #require(try JSONSerialization.jsonObject(with: Data(o.stdout.utf8)) as? [String: Any])
            #expect(r["emulated"] as? Bool == true, "TCG: the figures are marked emulated")
            let driver = (r["machine"] as? [String: Any])?["driver"] as? String ?? ""
            #expect(driver.hasPrefix("virtio_net in a QEMU guest"), "\(r["machine"] ?? "")")
            let points = try #require(r["points"] as? [[String: Any]])
            #expect(points.count == 4)
            for p in points {
                let l = p["lanes"] as? Int ?? 0, f = p["flows"] as? Int ?? 0
                let label = "\(l) lanes \(f) flows"
                #expect((p["received_packets"] as? Int ?? 0) > 0, "\(label): nothing received")
                #expect(p["queues_used"] as? Int == min(l, f), "\(label): \(p["per_queue_packets"] ?? "")")
                #expect(p["plan_matched"] as? Bool == true, "\(label)")
            }
            #expect(!VMTestbedExists(name), "the sweep left its guest behind")
        }

        /// One round: the flows' queues predicted in the guest from the device's own
        /// RSS (`lanes flows PORT --predict`), `lanes drop PORT --bind zero-copy` there,
        /// `perFlow` packets of each flow sent into its tap (UDP by `lanes gen`, TCP by
        /// scapy), the drop stopped by SIGINT through exec. It must count exactly what
        /// was sent, each queue exactly as predicted, with a balanced frame ledger.
        /// `deviceIgnoresTable`: the device is known not to steer by the table its
        /// driver reports (the per-queue check is then a known issue, said).
        static func zeroCopyRound(_ name: String, port: String, flows: [String], tcp: Bool, perFlow: Int = 20, deviceIgnoresTable: String? = nil,
                                  _ what: String) throws {
            let share = "/run/lanes/vm-\(name)/ctl/share"
            let (tap, dstMAC) = port == "d0" ? ("g0", "02:4c:00:00:00:02") : ("g1", "02:4c:00:00:01:02")
            try flows.map { $0 + (tcp ? " tcp" : "") }.joined(separator: "\n").write(toFile: share + "/flows.txt", atomically: true, encoding: .utf8)
            let predicted = try exec(name, lanesBinary, "flows", port, "--predict", "/lanes-ctl/share/flows.txt", "--json")
            try #require(predicted.status == 0, "\(predicted.stderr)")
            let plan = try #require(try JSONSerialization.jsonObject(with: Data(predicted.stdout.utf8)) as? [String: Any])
            #expect((plan["rss_source"] as? String ?? "").hasPrefix("driver"), "\(what): \(plan["rss_source"] ?? "")")
            let queues = try #require((plan["flows"] as? [[String: Any]])?.compactMap { $0["queue"] as? Int })
            try #require(queues.count == flows.count)
            var expected: [Int: Int] = [:]
            for q in queues { expected[q, default: 0] += perFlow }
            let drop = try Running(["testbed", "exec", "dut", "--name", name, "--", lanesBinary, "drop", port, "--bind", "zero-copy",
                                    "--filter", "\(tcp ? "tcp" : "udp") dport 9000", "--duration", "60", "--interval", "0", "--json"])
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline, !(try exec(name, "ip", "link", "show", port).stdout.contains(" xdp")) { usleep(200_000) }
            usleep(500_000)
            let total = flows.count * perFlow
            if tcp {
                let script = """
                import sys
                from scapy.all import Ether, IP, IPv6, TCP, sendp
                pkts = []
                for line in open(sys.argv[1]):
                    s, d, sp, dp, _ = line.split()
                    ip = IPv6(src=s, dst=d) if ":" in s else IP(src=s, dst=d)
                    pkts.append(Ether(dst=sys.argv[3]) / ip / TCP(sport=int(sp), dport=int(dp), flags="S"))
                sendp(pkts * int(sys.argv[4]), iface=sys.argv[2], inter=0.0005, verbose=0)
                """
                let o = try run(["ip", "netns", "exec", "\(name)-gen", "/usr/bin/python3", "-c", script, share + "/flows.txt", tap, dstMAC, "\(perFlow)"],
                                tool: "/usr/bin/env", timeout: 120)
                try #require(o.status == 0, "scapy: \(o.stderr)")
            } else {
                let gen = try run(["gen", tap, "--netns", "\(name)-gen", "--flows-file", share + "/flows.txt", "--count", "\(total)", "--size", "128",
                                   "--rate", "2kpps", "--dst-mac", dstMAC, "--tx", "xsk", "--queues", "0", "--interval", "0", "--json"], timeout: 60)
                try #require(gen.status == 0, "\(gen.stderr)")
                #expect(try gen.json()["tx_packets"] as? Int == total)
            }
            usleep(1_000_000)
            drop.signal(SIGINT)
            let d = drop.wait(timeout: 60)
            try #require(d.status == 0, "\(what): \(d.stderr)")
            let j = try d.json()
            #expect(j["exit_reason"] as? String == "SIGINT", "\(what): SIGINT reaches the guest's lanes through exec")
            #expect(j["bind_mode"] as? String == "zero-copy", "\(what): \(j["bind_mode"] ?? "")")
            #expect(j["rx_packets"] as? Int == total, "\(what): exactly what was sent")
            #expect(j["frames_balanced"] as? Bool == true, "\(what): \(j["lanes"] ?? "")")
            let lanes = try #require(j["lanes"] as? [[String: Any]])
            let perQueue = {
                for l in lanes {
                    let q = l["queue"] as? Int ?? -1
                    #expect(l["rx_packets"] as? Int == expected[q, default: 0], "\(what), queue \(q): \(l["rx_packets"] ?? "?") received, \(expected[q, default: 0]) predicted")
                }
            }
            if let why = deviceIgnoresTable { withKnownIssue(Comment(rawValue: why), isIntermittent: true, perQueue) } else { perQueue() }
        }

        /// `gen --rss --rss-table` with the guest device's own RSS ('lanes info --json'
        /// there): lane q's flows land on the device's queue q, each queue receiving
        /// exactly what its generator lane sent.
        static func rssTableRound(_ name: String, port: String) throws {
            let share = "/run/lanes/vm-\(name)/ctl/share"
            let (tap, dstMAC, dstIP, srcIP) = port == "d0" ? ("g0", "02:4c:00:00:00:02", "198.18.0.2", "198.18.0.1") : ("g1", "02:4c:00:00:01:02", "198.18.1.2", "198.18.1.1")
            let info = try exec(name, lanesBinary, "info", port, "--json")
            try #require(info.status == 0, "\(info.stderr)")
            try info.stdout.write(toFile: share + "/\(port).json", atomically: true, encoding: .utf8)
            let drop = try Running(["testbed", "exec", "dut", "--name", name, "--", lanesBinary, "drop", port, "--filter", "udp dport 9000",
                                    "--duration", "60", "--interval", "0", "--json"])
            let deadline = Date().addingTimeInterval(60)
            while Date() < deadline, !(try exec(name, "ip", "link", "show", port).stdout.contains(" xdp")) { usleep(200_000) }
            usleep(500_000)
            let gen = try run(["gen", tap, "--netns", "\(name)-gen", "--rss", "--rss-table", share + "/\(port).json", "--flows", "16",
                               "--src-ip", "\(srcIP)-\(srcIP.dropLast())200", "--dst-ip", dstIP, "--count", "640", "--rate", "2kpps",
                               "--dst-mac", dstMAC, "--tx", "xsk", "--interval", "0", "--json"], timeout: 60)
            try #require(gen.status == 0, "\(gen.stderr)")
            usleep(1_000_000)
            drop.signal(SIGINT)
            let d = drop.wait(timeout: 60)
            try #require(d.status == 0, "\(d.stderr)")
            let sent = try #require(try gen.json()["lanes"] as? [[String: Any]])
            let got = try #require(try d.json()["lanes"] as? [[String: Any]])
            #expect(sent.count == 2 && sent.allSatisfy { ($0["tx_packets"] as? Int ?? 0) > 0 }, "\(port): both generator lanes send: \(sent)")
            for l in got {
                let q = l["queue"] as? Int ?? -1
                let tx = sent.first { $0["queue"] as? Int == q }?["tx_packets"] as? Int
                #expect(l["rx_packets"] as? Int == tx, "\(port) queue \(q): received \(l["rx_packets"] ?? "?"), its generator lane sent \(tx ?? -1)")
            }
        }

        /// 64 IPv4 and 16 IPv6 flows of varied addresses and ports.
        static func flows(port: String) -> [String] {
            let net = port == "d0" ? 0 : 1
            let v4 = (0..<64).map { i in "198.18.\(net).\(10 + i % 16) 198.18.\(net).2 \(2000 + i * 7) 9000" }
            let prefix = net == 0 ? "fd00:198:18::" : "fd00:198:18:1::"
            let v6 = (0..<16).map { i in "\(prefix)\(String(0x10 + i, radix: 16)) \(prefix)2 \(3000 + i * 11) 9000" }
            return v4 + v6
        }

        /// `lanes drop --bind zero-copy` on virtio_net (d0) and igb (d1) in the guest
        /// counts exactly the packets sent into its tap over 80 flows (IPv4 and IPv6,
        /// UDP then TCP), each queue as its RSS predicts: virtio_net hashes ports,
        /// igb hashes UDP by addresses only. Then after 'ethtool -X PORT weight 1 3
        /// hkey NEWKEY': igb steers by the new table and key exactly; QEMU 10.0.2's
        /// virtio-net puts every packet on queue 0 after any 'ethtool -X' while its
        /// driver reports the new table (seen with equal 2, weight 1 3 and a new key).
        /// Device resets on the guest's igb (d1) under a zero-copy `lanes drop d1`:
        /// the driver's own reset ('ethtool -K d1 rx-all on' re-initialises it, the
        /// link falling and returning) is waited out and counting resumes; a PCI
        /// function reset ('echo 1 > .../reset', after which igb delivers nothing:
        /// it has no reset handlers) ends the run at once: its report (exit_reason
        /// "fault", what was counted), one line naming the reset, a non-zero exit,
        /// nothing left on d1. Under TCG the exit also waits for igb's re-initialisation
        /// when the program is detached, so the bound here is 3 s from the reset (2093 ms
        /// was seen once in CI against an earlier 2 s; what it guards is a run that goes
        /// on, unaware, for the whole 10 s).
        @Test func aDeviceResetOfIgbIsWaitedOutOrEndsTheRun() throws {
            try Self.withVM { name in
                let drop = try Running(["testbed", "exec", "dut", "--name", name, "--", lanesBinary, "drop", "d1", "--bind", "zero-copy",
                                        "--filter", "udp dport 9000", "--duration", "120", "--interval", "0", "--json"])
                func waitFor(_ what: String, _ script: String) throws {
                    let w = try Self.exec(name, "sh", "-c", "for i in $(seq 1 100); do \(script) && exit 0; sleep 0.1; done; exit 1")
                    try #require(w.status == 0, "\(what) did not come within 10 s")
                }
                try waitFor("the program on d1", "ip link show d1 | grep -q ' xdp'")
                usleep(1_000_000)
                func send(_ n: Int) throws {
                    let gen = try run(["gen", "g1", "--netns", "\(name)-gen", "--flows", "8", "--count", "\(n)", "--size", "128", "--rate", "2kpps",
                                       "--dst-mac", "02:4c:00:00:01:02", "--dst-ip", "198.18.1.2", "--tx", "xsk", "--queues", "0", "--interval", "0", "--json"], timeout: 60)
                    try #require(gen.status == 0 && (try gen.json()["tx_packets"] as? Int) == n, "\(gen.stderr)")
                    usleep(1_000_000)
                }
                try send(400)
                let reinit = try Self.exec(name, "ethtool", "-K", "d1", "rx-all", "on")
                try #require(reinit.status == 0, "\(reinit.stderr)")
                usleep(500_000)
                try waitFor("d1's link after its driver's reset", "grep -qx up /sys/class/net/d1/operstate")
                usleep(1_000_000)
                try send(400)
                let reset = try Self.exec(name, "sh", "-c", """
                    echo 1 > /sys/class/net/d1/device/reset || exit 2; t0=$(date +%s%N)
                    for i in $(seq 1 500); do pgrep -x lanes >/dev/null || { echo $(( ($(date +%s%N) - t0) / 1000000 )); exit 0; }; sleep 0.02; done; exit 1
                    """)
                let o = drop.wait(timeout: 30)
                _ = try? Self.exec(name, "ethtool", "-K", "d1", "rx-all", "off")
                try #require(reset.status == 0, "the run went on 10 s after the PCI reset (\(reset.status)): \(reset.stderr)")
                let ms = Int(reset.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
                #expect(ms >= 0 && ms < 3000, "the run ended \(ms) ms after the reset")
                #expect(o.status != 0)
                #expect(o.stderr.contains("d1 link down at") && o.stderr.contains("counting goes on"), "the driver's reset was not said: \(o.stderr)")
                let last = o.stderr.split(separator: "\n").last.map(String.init) ?? ""
                #expect(last.contains("the run ended at") && last.contains("d1's device (PCI ") && last.contains("was reset under the run"), "\(o.stderr)")
                let j = try o.json()
                #expect(j["exit_reason"] as? String == "fault" && (j["fault"] as? String ?? "").contains("was reset"), "\(j["fault"] ?? "")")
                #expect(j["bind_mode"] as? String == "zero-copy")
                #expect(j["rx_packets"] as? Int == 800, "counting did not resume after the driver's reset: \(j["rx_packets"] ?? "?")")
                #expect(j["frames_balanced"] as? Bool == true, "\(j["lanes"] ?? "")")
                #expect(!(try Self.exec(name, "ip", "link", "show", "d1").stdout.contains(" xdp")), "a program was left on d1")
            }
        }

        @Test(arguments: ["d0", "d1"]) func zeroCopyDropCountsExactlyOnThePredictedQueues(port: String) throws {
            try Self.withVM { name in
                let f = Self.flows(port: port)
                try Self.zeroCopyRound(name, port: port, flows: f, tcp: false, "\(port) UDP, default RSS")
                try Self.zeroCopyRound(name, port: port, flows: f, tcp: true, "\(port) TCP, default RSS")
                try Self.rssTableRound(name, port: port)
                let change = ["ethtool", "-X", port, "weight", "1", "3", "hkey", (0..<40).map { String(format: "%02x", ($0 * 37 + 11) % 256) }.joined(separator: ":")]
                let x = try run(["testbed", "exec", "dut", "--name", name, "--"] + change)
                try #require(x.status == 0, "\(change): \(x.stderr)")
                try Self.zeroCopyRound(name, port: port, flows: f, tcp: false,
                                       deviceIgnoresTable: port == "d0" ? "QEMU 10.0.2's virtio-net steers every packet to queue 0 after 'ethtool -X', whatever table its driver reports" : nil,
                                       "\(port) UDP after weight 1 3 and a new key")
            }
        }
    }
}
