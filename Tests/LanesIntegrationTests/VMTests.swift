import Foundation
import Testing

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

        /// `lanes drop PORT --bind zero-copy` in the guest counts exactly the UDP
        /// packets sent into its tap over 64 flows (varied addresses and ports), each
        /// queue exactly what `lanes flows --predict` says from the device's own RSS
        /// key, table and hash fields; the frame ledger balances with the driver's
        /// posted frames counted. virtio_net hashes UDP's ports, igb only addresses.
        @Test(arguments: ["d0", "d1"]) func zeroCopyDropCountsExactlyOnThePredictedQueues(port: String) throws {
            try Self.withVM { name in
                let share = "/run/lanes/vm-\(name)/ctl/share"
                let (tap, dstIP, dstMAC) = port == "d0" ? ("g0", "198.18.0.2", "02:4c:00:00:00:02") : ("g1", "198.18.1.2", "02:4c:00:00:01:02")
                let flows = (0..<64).map { i in "198.18.\(port == "d0" ? 0 : 1).\(10 + i % 16) \(dstIP) \(2000 + i * 7) 9000" }
                try flows.joined(separator: "\n").write(toFile: share + "/flows.txt", atomically: true, encoding: .utf8)
                let predicted = try Self.exec(name, lanesBinary, "flows", port, "--predict", "/lanes-ctl/share/flows.txt", "--json")
                try #require(predicted.status == 0, "\(predicted.stderr)")
                let plan = try #require(try JSONSerialization.jsonObject(with: Data(predicted.stdout.utf8)) as? [String: Any])
                #expect((plan["rss_source"] as? String ?? "").hasPrefix("driver"), "\(plan)")
                let queues = try #require((plan["flows"] as? [[String: Any]])?.compactMap { $0["queue"] as? Int })
                try #require(queues.count == 64)
                let perFlow = 20
                var expected = [0: 0, 1: 0]
                for q in queues { expected[q, default: 0] += perFlow }
                #expect(expected.values.allSatisfy { $0 > 0 }, "64 flows should reach both queues: \(expected)")
                let drop = try Running(["testbed", "exec", "dut", "--name", name, "--", lanesBinary, "drop", port, "--bind", "zero-copy",
                                        "--duration", "25", "--interval", "0", "--json"])
                // Wait for the guest's lanes to attach.
                let deadline = Date().addingTimeInterval(60)
                while Date() < deadline, !(try Self.exec(name, "ip", "link", "show", port).stdout.contains("xdp")) { usleep(200_000) }
                usleep(1_000_000)
                let gen = try run(["gen", tap, "--netns", "\(name)-gen", "--flows-file", share + "/flows.txt", "--count", "\(64 * perFlow)",
                                   "--rate", "2kpps", "--dst-mac", dstMAC, "--tx", "xsk", "--queues", "0", "--interval", "0", "--json"], timeout: 60)
                try #require(gen.status == 0, "\(gen.stderr)")
                #expect(try gen.json()["tx_packets"] as? Int == 64 * perFlow)
                let d = drop.wait(timeout: 90)
                try #require(d.status == 0, "\(d.stderr)")
                let j = try d.json()
                #expect(j["bind_mode"] as? String == "zero-copy", "\(j)")
                #expect(j["rx_packets"] as? Int == 64 * perFlow, "exactly what was sent")
                #expect(j["frames_balanced"] as? Bool == true, "\(j["lanes"] ?? "")")
                let lanes = try #require(j["lanes"] as? [[String: Any]])
                for l in lanes {
                    let q = l["queue"] as? Int ?? -1
                    #expect(l["rx_packets"] as? Int == expected[q, default: 0], "queue \(q): \(l["rx_packets"] ?? "?") received, \(expected[q, default: 0]) predicted")
                }
            }
        }
    }
}
