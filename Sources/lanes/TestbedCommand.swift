import ArgumentParser
import Foundation
import LanesLab
import LanesXDP

struct TestbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "testbed",
        abstract: "Create, remove or show the built-in testbed: netns+veth, or with --vm the DUT as a QEMU guest on virtio-net and igb.",
        discussion: """
        gen:g0 (198.18.0.1) <-> dut:d0 (198.18.0.2), dut:d1 (198.18.1.2) <-> sink:s0 (198.18.1.1)
        --vm: gen:g0 (tap) <-> guest d0 (virtio_net), gen:g1 (tap, 198.18.1.1) <-> guest d1 (igb)
        Example: lanes testbed up --queues 2 && lanes info d0 --netns lanes-dut
                 lanes testbed up --vm && lanes testbed exec dut -- lanes info d0
        """,
        subcommands: [Up.self, Down.self, Status.self, Traffic.self, Exec.self])

    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the testbed (harmless when it is already up).",
            discussion: "Example: lanes testbed up --queues 2 --name lab; jumbo frames: lanes testbed up --mtu 9000")
        @Option(help: "RX and TX queues per veth (default: online CPUs).") var queues: Int?
        @Option(help: "Testbed name: namespaces NAME-gen, NAME-dut, NAME-sink.") var name = Testbed.defaultName
        @Option(help: "MTU of every port (9000 for jumbo frames: the lanes then take multi-buffer packets).") var mtu = 1500
        @Flag(help: "The DUT as a QEMU guest (KVM where a guest boots under it, else TCG) with a virtio-net NIC (d0) and an igb NIC (d1), N queues each (default 2).") var vm = false

        func run() throws {
            if vm {
                guard mtu == 1500 else { throw LanesError("--mtu is not supported with --vm yet", fix: "drop --mtu") }
                let v = VMTestbed(name: name)
                let q = queues ?? 2
                let r = try v.up(queues: q)
                if r.created {
                    print("testbed \(name) up (vm): \(q) queues per NIC, guest kernel \(r.kernel), booted in \(format2(r.bootSeconds)) s under \(r.accelerator) (\(r.why))")
                } else {
                    print("testbed \(name) already up (vm, \(r.accelerator))")
                }
                for n in v.status().nics { print("  \(n.host) <-> guest \(n.guest) (\(n.driver))  \(n.mac)  \(n.ipv4)") }
                return
            }
            if VMTestbed.exists(name: name) { throw LanesError("a VM testbed named '\(name)' is up", fix: "lanes testbed down --name \(name), or pick another --name") }
            let tb = Testbed(name: name)
            let q = queues ?? Sysfs.onlineCPUs()
            let created = try tb.up(queues: q, mtu: mtu)
            print(created ? "testbed \(name) up: \(q) queues per veth, MTU \(mtu)" : "testbed \(name) already up with \(q) queues, MTU \(mtu)")
            for p in tb.ports { print("  \(p.namespace):\(p.interface)  \(p.mac)  \(p.ipv4)  \(p.ipv6)") }
        }
    }

    struct Down: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Remove the testbed: namespaces, veths and any XDP program on them.",
            discussion: "Example: lanes testbed down --name lab")
        @Option(help: "Testbed name.") var name = Testbed.defaultName
        func run() throws {
            try VMTestbed(name: name).down()
            try Testbed(name: name).down()
            print("testbed \(name) down")
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show what exists of the testbed.",
            discussion: "Example: lanes testbed status --json")
        @Option(help: "Testbed name.") var name = Testbed.defaultName
        @Flag(help: "Print JSON.") var json = false
        func run() throws {
            if VMTestbed.exists(name: name) {
                let s = VMTestbed(name: name).status()
                if json { return printJSON(s) }
                print("testbed \(s.name) (vm): \(s.up ? "up" : "down")" + (s.accelerator.map { " under \($0)" } ?? "") + (s.guestKernel.map { ", guest kernel \($0)" } ?? ""))
                for n in s.nics { print("  \(n.host) <-> guest \(n.guest) (\(n.driver))") }
                return
            }
            let s = Testbed(name: name).status()
            if json { return printJSON(s) }
            print("testbed \(s.name): \(s.up ? "up" : "down")" + (s.queues.map { ", \($0) queues per veth" } ?? ""))
            for (ns, present) in s.namespaces.sorted(by: { $0.key < $1.key }) { print("  netns \(ns): \(present ? "present" : "absent")") }
            for (port, id) in s.attachedXDP.sorted(by: { $0.key < $1.key }) { print("  xdp on \(port): program id \(id)") }
        }
    }

    struct Traffic: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Send UDP through the kernel stack of the gen namespace (a smoke test for lanes drop/fwd).",
            discussion: "Example: lanes testbed traffic --count 10000 --flows 32 --to 198.18.0.2 --port 9000")
        @Option(help: "Testbed name.") var name = Testbed.defaultName
        @Option(help: "Packets to send.") var count = 1000
        @Option(help: "Flows (distinct source ports).") var flows = 16
        @Option(help: "Destination IPv4 address (198.18.0.0/15 only).") var to = "198.18.0.2"
        @Option(help: "Destination UDP port.") var port: UInt16 = 9000
        @Option(help: "Payload bytes.") var size = 64
        @Option(help: "Packets per second (0: as fast as the kernel takes them).") var pps = 20000
        @Option(help: "Send from this namespace instead of NAME-gen.") var netns: String?

        func run() throws {
            try NetworkNamespace.enter(netns ?? Testbed(name: name).gen)
            let sent = try KernelTraffic.sendUDP(to: to, port: port, count: count, flows: flows, payload: size, pps: pps)
            print("sent \(sent) UDP packets to \(to):\(port) over \(flows) flows")
        }
    }

    struct Exec: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run a command in a testbed role: dut (the guest on the VM testbed, NAME-dut otherwise), gen or sink.",
            discussion: """
            The command's output and exit status are its own. In the guest, \(VMTestbed.sharedGuestDir) is the host's
            /run/lanes/vm-NAME/ctl/share (files both sides see); SIGINT and SIGTERM are passed on.
            Example: lanes testbed exec dut -- lanes drop d0 --bind zero-copy --duration 20 --json
            """)
        @Argument(help: "dut, gen or sink.") var role: String
        @Option(help: "Testbed name.") var name = Testbed.defaultName
        @Option(help: "Seconds the command may run (default: no limit).") var timeout: Double?
        @Argument(parsing: .postTerminator, help: "The command, after '--'.") var command: [String] = []

        func run() throws {
            guard ["dut", "gen", "sink"].contains(role) else { throw LanesError("bad role '\(role)'", fix: "use dut, gen or sink") }
            guard !command.isEmpty else { throw LanesError("no command given", fix: "put it after '--': lanes testbed exec \(role) -- ip link") }
            let vm = VMTestbed(name: name)
            if VMTestbed.exists(name: name) && role == "dut" {
                StopSignals.block()
                let r = try vm.exec(command, timeout: timeout)
                printError(r.stderr)
                print(r.stdout, terminator: "")
                fflush(nil) // every output stream: stdout without naming the mutable global
                throw ExitCode(r.status)
            }
            // The host side: a namespace (the VM testbed's gen namespace holds both its taps).
            let ns = VMTestbed.exists(name: name) ? vm.gen : "\(name)-\(role)"
            guard NetworkNamespace.exists(ns) else { throw LanesError("the testbed '\(name)' is not up (no namespace \(ns))", fix: "run 'lanes testbed up' first") }
            let argv = ["/usr/bin/env", "ip", "netns", "exec", ns] + command
            let cargs = argv.map { strdup($0) } + [nil]
            execv(argv[0], cargs)
            throw LanesError.system("run ip netns exec \(ns)", errno: errno)
        }
    }
}

func printJSON<T: Encodable>(_ value: T) {
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    enc.keyEncodingStrategy = .convertToSnakeCase
    if let d = try? enc.encode(value) { print(String(decoding: d, as: UTF8.self)) }
}
