import Foundation
import LanesLab
import LanesReport
import LanesXDP
import Testing

/// Real sshd in testbed namespaces: a management veth from the root namespace into
/// each (a /30 of 198.19.254.0/24), keys made for the test, sshd listening on that
/// address only. The client side is OpenSSH with a config file of the test's
/// (`SSHAccess.configFile`): what a user's ~/.ssh/config would say.
final class SSHHosts {
    let dir: String
    let config: String
    private(set) var addresses: [String] = []
    private var links: [String] = []
    private var daemons: [Running] = []
    private let namespaces: [String]

    init(namespaces: [String]) throws {
        self.namespaces = namespaces
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("lanes-ssh-\(getpid())-\(UInt32.random(in: 0 ... .max))").path
        config = dir + "/config"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for key in ["client", "host"] {
            let k = try run(["-q", "-t", "ed25519", "-N", "", "-f", "\(dir)/\(key)"], tool: "/usr/bin/ssh-keygen")
            try #require(k.status == 0, "ssh-keygen: \(k.stderr)")
        }
        try FileManager.default.copyItem(atPath: "\(dir)/client.pub", toPath: "\(dir)/authorized_keys")
        try FileManager.default.createDirectory(atPath: "/run/sshd", withIntermediateDirectories: true) // sshd's privilege separation
        var client = ""
        for (i, ns) in namespaces.enumerated() {
            let base = 4 * (i + 1) + 4 * Int(getpid() % 50) // a /30 per host, apart from other runs'
            let here = "198.19.254.\(base + 1)", there = "198.19.254.\(base + 2)"
            let link = "lm\(getpid() % 100000)h\(i)"
            try #require(try ip("link", "add", link, "type", "veth", "peer", "name", "mgmt0", "netns", ns).status == 0)
            links.append(link)
            _ = try ip("addr", "add", "\(here)/30", "dev", link)
            _ = try ip("link", "set", link, "up")
            _ = try ip("-n", ns, "addr", "add", "\(there)/30", "dev", "mgmt0")
            _ = try ip("-n", ns, "link", "set", "mgmt0", "up")
            _ = try ip("-n", ns, "link", "set", "lo", "up")
            let cfg = "\(dir)/sshd\(i).conf"
            try """
            ListenAddress \(there)
            Port 22
            HostKey \(dir)/host
            AuthorizedKeysFile \(dir)/authorized_keys
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            UsePAM no
            StrictModes no
            PidFile \(dir)/sshd\(i).pid
            ClientAliveInterval 2
            ClientAliveCountMax 3

            """.write(toFile: cfg, atomically: true, encoding: .utf8)
            daemons.append(try Running(["netns", "exec", ns, "/usr/sbin/sshd", "-D", "-e", "-f", cfg], tool: "/usr/sbin/ip"))
            client += "Host \(there)\n  User root\n  IdentityFile \(dir)/client\n  IdentitiesOnly yes\n  UserKnownHostsFile \(dir)/known_hosts\n  StrictHostKeyChecking accept-new\n"
            addresses.append(there)
        }
        try client.write(toFile: config, atomically: true, encoding: .utf8)
        for a in addresses {
            let deadline = Date().addingTimeInterval(10)
            var up = false, last = ""
            while !up && Date() < deadline {
                let o = try run(["-F", config, "-o", "BatchMode=yes", a, "true"], tool: "/usr/bin/ssh", timeout: 10)
                up = o.status == 0
                last = o.stderr
                if !up { usleep(100_000) }
            }
            try #require(up, "sshd at \(a) did not answer: \(last); sshd: \(daemons.map(\.stderrSoFar).joined())")
        }
    }

    func host(_ i: Int) throws -> HostSpec { try HostSpec(parsing: "root@\(addresses[i])") }
    var access: SSHAccess { SSHAccess(configFile: config, lanesPath: lanesBinary) }

    deinit {
        for d in daemons { d.signal(SIGTERM); d.wait(timeout: 5) }
        // Sessions whose client went (a killed ssh) outlive the listener: end them
        // while their namespace is there (gone with it, they would wait forever).
        for ns in namespaces {
            for pid in (try? ip("netns", "pids", ns).stdout.split(separator: "\n")) ?? [] {
                if let p = Int32(pid), (try? String(contentsOfFile: "/proc/\(p)/comm", encoding: .utf8))?.hasPrefix("sshd") == true { kill(p, SIGTERM) }
            }
        }
        for l in links { _ = try? ip("link", "del", l) }
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// The `lanes` processes in namespace `ns` (sshd and its sessions aside).
func lanesProcesses(in ns: String) throws -> [String] {
    let pids = try ip("netns", "pids", ns).stdout.split(separator: "\n")
    return pids.compactMap { pid in
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe")) ?? ""
        return exe.hasSuffix("/lanes") ? String(pid) : nil
    }
}

extension IntegrationTests {
    /// One side of an experiment on another host, over OpenSSH (issue 31's
    /// transport): started, watched, stopped, its report back typed.
    @Suite(.serialized) struct SSHSides {
        @Test func hostSpellings() throws {
            #expect(try HostSpec(parsing: "local") == .local)
            #expect(try HostSpec(parsing: "root@198.18.0.10") == .ssh(user: "root", host: "198.18.0.10", port: nil))
            #expect(try HostSpec(parsing: "ec2-user@gen:2222") == .ssh(user: "ec2-user", host: "gen", port: 2222))
            #expect(try HostSpec(parsing: "[fd00::1]:22") == .ssh(user: nil, host: "fd00::1", port: 22))
            #expect(try HostSpec(parsing: "[fd00::1]:22").description == "[fd00::1]:22")
            for bad in ["", "@host", "root@", "host:0", "host:99999", "-oProxyCommand=x", "a b", "[fd00::1"] {
                #expect(throws: LanesError.self, "\(bad)") { _ = try HostSpec(parsing: bad) }
            }
            #expect(Remote.quote("it's") == #"'it'\''s'"#)
        }

        /// The dut side on an SSH host: preflight gives its port's facts, a drop runs
        /// there under real traffic, the controller stops it and reads the report typed,
        /// and nothing is left there.
        @Test func aSideOverSSHRunsStopsAndReportsTyped() throws {
            try withTestbed(queues: 2) { tb in
                let hosts = try SSHHosts(namespaces: [tb.dut])
                let host = try hosts.host(0)
                let side = try Remote.preflight(host: host, port: "d0", access: hosts.access, localLanes: lanesBinary)
                #expect(side.info.driver == "veth" && side.info.rxQueues == 2 && side.info.mtu == 1500, "\(side.info)")
                var drop = LanesCommand(.drop, ports: ["d0"])
                drop.filter = "udp dport 9000"
                drop.interval = 0.5
                let child = try Child(drop, on: host, access: hosts.access)
                try tb.waitForXDP(tb.dut, "d0")
                try tb.traffic(count: 3000, pps: 20000)
                usleep(1_200_000) // two interval lines at least
                child.interrupt()
                let o = child.wait(timeout: 20)
                #expect(o.status == 0, "\(o.stderr)")
                let report = try #require(Report.last(o.stdout), "no report: \(o.stdout.suffix(300)) \(o.stderr)")
                #expect(report.exitReason == .sigint && report.interface == "d0")
                #expect((report.rxPackets ?? 0) >= 3000 && report.framesBalanced == true, "\(report.rxPackets ?? 0) received")
                #expect(!IntervalLine.lines(o.stdout).isEmpty, "the interval lines came back too")
                #expect(try lanesProcesses(in: tb.dut).isEmpty && !tb.xdpAttached(tb.dut, "d0"))
            }
        }

        /// The SSH connection killed under a run: the remote side stops on its own
        /// (its channel's EOF), detaching its program; no lanes is left there.
        @Test func aLostConnectionStopsTheRemoteSide() throws {
            try withTestbed(queues: 2) { tb in
                let hosts = try SSHHosts(namespaces: [tb.dut])
                let child = try Child(LanesCommand(.drop, ports: ["d0"]), on: try hosts.host(0), access: hosts.access)
                try tb.waitForXDP(tb.dut, "d0")
                #expect(try lanesProcesses(in: tb.dut).count == 1)
                child.abandon() // the connection goes with ssh
                let deadline = Date().addingTimeInterval(10)
                while try (!lanesProcesses(in: tb.dut).isEmpty || tb.xdpAttached(tb.dut, "d0")) && Date() < deadline { usleep(50_000) }
                #expect(try lanesProcesses(in: tb.dut).isEmpty, "a lanes process was left on the host")
                #expect(try !tb.xdpAttached(tb.dut, "d0"), "the program was left attached")
                _ = child.wait(timeout: 1)
            }
        }

        /// SIGINT, SIGTERM and SIGHUP (a terminal or an SSH session with a pty gone)
        /// each end a run cleanly: the report with its reason, exit 0, nothing attached.
        @Test(arguments: [SIGINT, SIGTERM, SIGHUP])
        func everyStopSignalEndsTheRunWithItsReport(signal: Int32) throws {
            try withTestbed(queues: 1) { tb in
                let drop = try Running(["drop", "d0", "--netns", tb.dut, "--interval", "0", "--json"])
                try tb.waitForXDP(tb.dut, "d0")
                drop.signal(signal)
                let o = drop.wait(timeout: 10)
                #expect(o.status == 0, "\(o.stderr)")
                let name = [SIGINT: "SIGINT", SIGTERM: "SIGTERM", SIGHUP: "SIGHUP"][signal]!
                #expect(Report.last(o.stdout)?.exitReason.rawValue == name, "\(o.stdout.suffix(200))")
                #expect(try !tb.xdpAttached(tb.dut, "d0"))
            }
        }

        /// `lanes scale` between two hosts (sshd in the generator's and the dut's
        /// namespaces, driven from the root namespace): the sweep's points, each side's
        /// port facts, the ports' channels put back, nothing left on either host.
        @Test func scaleBetweenTwoHostsGivesTheSweepsPoints() throws {
            try withTestbed(queues: 2) { tb in
                let hosts = try SSHHosts(namespaces: [tb.gen, tb.dut])
                let o = try lanes("scale", "--gen-host", "root@\(hosts.addresses[0])", "--gen-port", "g0", "--dut-host", "root@\(hosts.addresses[1])",
                                  "--dut-port", "d0", "--dut-mac", "02:4c:00:00:00:02", "--dut-ip", "198.18.1.1", "--ssh-config", hosts.config, "--lanes", "1,2", "--flows", "1,16", "--repeat", "1",
                                  "--duration", "1", "--warmup", "0.3", "--json", timeout: 300)
                try #require(o.status == 0, "\(o.stderr)")
                let result = try #require(try JSONSerialization.jsonObject(with: Data(o.stdout.utf8)) as? [String: Any])
                let points = try #require(result["points"] as? [[String: Any]])
                #expect(points.map { "\($0["lanes"] ?? 0)x\($0["flows"] ?? 0)" } == ["1x1", "1x16", "2x1", "2x16"])
                for p in points {
                    let label = "\(p["lanes"] ?? 0) lanes \(p["flows"] ?? 0) flows"
                    let offered = p["offered_packets"] as? Int ?? 0, received = p["received_packets"] as? Int ?? 0
                    #expect(offered > 0 && received > 0 && received <= offered, "\(label): \(received) of \(offered)")
                    #expect(p["bound"] as? String != nil && p["napi"] as? String == "device")
                    if p["flows"] as? Int == 16 && p["lanes"] as? Int == 2 {
                        #expect(p["queues_used"] as? Int == 2, "\(label): 16 flows planned by the dut's RSS use both queues: \(p["per_queue_packets"] ?? "?")")
                    }
                    if p["flows"] as? Int == 1 { #expect(p["queues_used"] as? Int == 1, "\(label): one flow, one queue") }
                }
                let sides = try #require(result["sides"] as? [[String: Any]])
                #expect(sides.map { $0["role"] as? String } == ["generator", "dut"])
                #expect(sides.map { $0["port"] as? String } == ["g0", "d0"] && sides.allSatisfy { $0["driver"] as? String == "veth" })
                #expect(sides[1]["mac"] as? String == "02:4c:00:00:00:02" && sides[0]["host"] as? String == "root@\(hosts.addresses[0])")
                for (ns, port) in [(tb.gen, "g0"), (tb.dut, "d0")] {
                    #expect(try lanesProcesses(in: ns).isEmpty, "lanes left in \(ns)")
                    #expect(try !tb.xdpAttached(ns, port), "a program left on \(port)")
                    let q = try lanes("info", port, "--netns", ns, "--json")
                    #expect(q.stdout.contains("\"rx_queues\" : 2"), "\(port)'s channels put back")
                }
            }
        }

        /// `lanes rfc2544` across three hosts: the generator's, the dut's (lanes fwd
        /// l3 there, d0 -> d1 by that host's routes, frames sent to d0's learnt MAC) and
        /// the receiver's; an NDR comes back, the path names each host, nothing is left.
        @Test func rfc2544AcrossHostsFindsAnNDR() throws {
            try withTestbed(queues: 2) { tb in
                let hosts = try SSHHosts(namespaces: [tb.gen, tb.dut, tb.sink])
                let o = try lanes("rfc2544", "--gen-host", "root@\(hosts.addresses[0])", "--gen-port", "g0", "--dut-host", "root@\(hosts.addresses[1])",
                                  "--dut-port", "d0,d1", "--rx-host", "root@\(hosts.addresses[2])", "--rx-port", "s0", "--ssh-config", hosts.config,
                                  "--tests", "throughput", "--sizes", "128", "--flows", "4", "--trial-duration", "0.3", "--verify-duration", "0.6",
                                  "--precision", "10%", "--json", timeout: 300)
                try #require(o.status == 0, "\(o.stderr)")
                let r = try #require(try JSONSerialization.jsonObject(with: Data(o.stdout.utf8)) as? [String: Any])
                let path = r["path"] as? String ?? ""
                #expect(path.contains("root@\(hosts.addresses[0]) g0") && path.contains("root@\(hosts.addresses[1]) d0 -> d1") && path.contains("root@\(hosts.addresses[2]) s0"), "\(path)")
                let p = try #require((r["points"] as? [[String: Any]])?.first)
                #expect(((p["ndr"] as? [String: Any])?["pps"] as? Double ?? 0) > 0, "\(p)")
                #expect((p["generator_max_pps"] as? Double ?? 0) > 10_000)
                for (ns, port) in [(tb.gen, "g0"), (tb.dut, "d0"), (tb.sink, "s0")] {
                    #expect(try lanesProcesses(in: ns).isEmpty, "lanes left in \(ns)")
                    #expect(try !tb.xdpAttached(ns, port), "a program left on \(port)")
                }
            }
        }

        /// The controller stopped mid-sweep, by SIGINT (as a user's Ctrl-C: the sides
        /// stopped, the finished points printed, exit 130) or killed outright (each
        /// host's side stops by itself on its SSH channel's EOF): nothing left on either host.
        @Test(arguments: [SIGINT, SIGKILL])
        func aStoppedControllerLeavesNothingOnEitherHost(signal: Int32) throws {
            try withTestbed(queues: 2) { tb in
                let hosts = try SSHHosts(namespaces: [tb.gen, tb.dut])
                let sweep = try Running(["scale", "--gen-host", "root@\(hosts.addresses[0])", "--gen-port", "g0", "--dut-host", "root@\(hosts.addresses[1])",
                                         "--dut-port", "d0", "--ssh-config", hosts.config, "--lanes", "1", "--flows", "1,16", "--repeat", "3",
                                         "--duration", "2", "--json"])
                try tb.waitForXDP(tb.dut, "d0", timeout: 60)
                usleep(500_000)
                sweep.signal(signal)
                let o = sweep.wait(timeout: 30)
                if signal == SIGINT {
                    #expect(o.status == 128 + SIGINT && o.stderr.contains("interrupted by SIGINT"), "exit \(o.status): \(o.stderr.suffix(300))")
                }
                let killed = Date(), deadline = killed.addingTimeInterval(20)
                func clean() throws -> Bool {
                    try lanesProcesses(in: tb.gen).isEmpty && lanesProcesses(in: tb.dut).isEmpty && !tb.xdpAttached(tb.dut, "d0") && !tb.xdpAttached(tb.gen, "g0")
                }
                // A side the controller started just before it died comes up after it (its
                // ssh connects, then reads the EOF): look for 3 s at least.
                while try (!clean() || Date() < killed.addingTimeInterval(3)) && Date() < deadline { usleep(100_000) }
                let left = (try lanesProcesses(in: tb.gen), try lanesProcesses(in: tb.dut))
                #expect(try clean(), "lanes left: gen \(left.0), dut \(left.1)")
            }
        }

        /// Each problem is one line before any traffic, naming the host.
        @Test func preflightRefusesInOneLine() throws {
            try withTestbed(queues: 1) { tb in
                let hosts = try SSHHosts(namespaces: [tb.dut])
                let host = try hosts.host(0)
                func refusal(_ body: () throws -> Void) -> String {
                    do { try body(); return "no error" } catch { return "\(error)" }
                }
                let wrongPort = refusal { _ = try Remote.preflight(host: host, port: "nosuch0", access: hosts.access, localLanes: lanesBinary) }
                #expect(wrongPort.contains("port nosuch0") && wrongPort.contains("not found"), "\(wrongPort)")
                let closed = refusal { _ = try Remote.preflight(host: try HostSpec(parsing: "root@\(hosts.addresses[0]):2"), port: "d0", access: hosts.access, localLanes: lanesBinary) }
                #expect(closed.contains("cannot reach root@\(hosts.addresses[0]):2 over ssh") && closed.contains("refused"), "\(closed)")
                // The host known, no key for it.
                let keyless = hosts.dir + "/keyless"
                try "Host \(hosts.addresses[0])\n  User root\n  IdentityFile \(hosts.dir)/none\n  IdentitiesOnly yes\n  IdentityAgent none\n  UserKnownHostsFile \(hosts.dir)/known_hosts\n"
                    .write(toFile: keyless, atomically: true, encoding: .utf8)
                let noKey = refusal { _ = try Remote.preflight(host: host, port: "d0", access: SSHAccess(configFile: keyless, lanesPath: lanesBinary), localLanes: lanesBinary) }
                #expect(noKey.contains("cannot reach root@\(hosts.addresses[0]) over ssh") && noKey.contains("Permission denied"), "\(noKey)")
                // Another build there: this binary with one byte more.
                let other = hosts.dir + "/lanes-other"
                try FileManager.default.copyItem(atPath: lanesBinary, toPath: other)
                let h = try FileHandle(forWritingTo: URL(fileURLWithPath: other))
                h.seekToEndOfFile(); h.write(Data([0])); h.closeFile()
                let mismatch = refusal { _ = try Remote.preflight(host: host, port: "d0", access: SSHAccess(configFile: hosts.config, lanesPath: other), localLanes: lanesBinary) }
                #expect(mismatch.contains("runs another Lanes build"), "\(mismatch)")
                for e in [wrongPort, closed, noKey, mismatch] { #expect(!e.contains("\n"), "one line: \(e)") }
            }
        }
    }
}
