import ArgumentParser
import Foundation
import LanesLab
import LanesXDP

struct TestbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "testbed",
        abstract: "Create, remove or show the built-in netns+veth testbed.",
        discussion: """
        gen:g0 (198.18.0.1) <-> dut:d0 (198.18.0.2), dut:d1 (198.18.1.2) <-> sink:s0 (198.18.1.1)
        Example: lanes testbed up --queues 2 && lanes info d0 --netns lanes-dut
        """,
        subcommands: [Up.self, Down.self, Status.self, Traffic.self])

    struct Up: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the testbed (harmless when it is already up).",
            discussion: "Example: lanes testbed up --queues 2 --name lab; jumbo frames: lanes testbed up --mtu 9000")
        @Option(help: "RX and TX queues per veth (default: online CPUs).") var queues: Int?
        @Option(help: "Testbed name: namespaces NAME-gen, NAME-dut, NAME-sink.") var name = Testbed.defaultName
        @Option(help: "MTU of every port (9000 for jumbo frames: the lanes then take multi-buffer packets).") var mtu = 1500

        func run() throws {
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
}

func printJSON<T: Encodable>(_ value: T) {
    let enc = JSONEncoder()
    enc.outputFormatting = [.prettyPrinted, .sortedKeys]
    enc.keyEncodingStrategy = .convertToSnakeCase
    if let d = try? enc.encode(value) { print(String(decoding: d, as: UTF8.self)) }
}
