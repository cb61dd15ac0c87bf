import Foundation
import LanesXDP

/// The built-in virtual testbed: three network namespaces NAME-gen, NAME-dut and
/// NAME-sink joined by two veth pairs, gen:g0 <-> dut:d0 and dut:d1 <-> sink:s0,
/// each veth with N RX and N TX queues, fixed MACs, addresses from 198.18.0.0/15
/// (RFC 2544), static neighbours and routes through the dut. It is the default
/// target of every command given no interface.
public struct Testbed: Sendable {
    public struct Port: Sendable, Codable {
        public var namespace: String
        public var interface: String
        public var mac: String
        public var ipv4: String
        public var ipv6: String
    }

    public static let defaultName = "lanes"
    public let name: String

    public init(name: String = Testbed.defaultName) { self.name = name }

    public var gen: String { "\(name)-gen" }
    public var dut: String { "\(name)-dut" }
    public var sink: String { "\(name)-sink" }
    public var namespaces: [String] { [gen, dut, sink] }

    public var g0: Port { Port(namespace: gen, interface: "g0", mac: "02:4c:00:00:00:01", ipv4: "198.18.0.1", ipv6: "fd00:198:18::1") }
    public var d0: Port { Port(namespace: dut, interface: "d0", mac: "02:4c:00:00:00:02", ipv4: "198.18.0.2", ipv6: "fd00:198:18::2") }
    public var d1: Port { Port(namespace: dut, interface: "d1", mac: "02:4c:00:00:01:02", ipv4: "198.18.1.2", ipv6: "fd00:198:18:1::2") }
    public var s0: Port { Port(namespace: sink, interface: "s0", mac: "02:4c:00:00:01:01", ipv4: "198.18.1.1", ipv6: "fd00:198:18:1::1") }
    public var ports: [Port] { [g0, d0, d1, s0] }

    static func validate(name: String) throws(LanesError) {
        let ok = !name.isEmpty && name.count <= 32 && name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
        guard ok else { throw LanesError("bad testbed name '\(name)'", fix: "use up to 32 letters, digits, '-' or '_'") }
    }

    static func preflight() throws(LanesError) {
        try requireRoot(for: "the testbed")
        guard Shell.has("ip") else { throw LanesError("'ip' not found", fix: "apt-get install iproute2") }
        guard Sysfs.exists("/sys/module/veth") || Sysfs.exists("/proc/sys/net") else {
            throw LanesError("this kernel has no networking sysctls", fix: "use a kernel with network namespaces and veth")
        }
    }

    public func exists() -> Bool { namespaces.allSatisfy(NetworkNamespace.exists) }

    /// The queue count of the testbed's veths now, or nil when it is not up.
    public func queueCount() -> Int? {
        guard exists(), let r = try? Shell.run(["ip", "-n", dut, "-d", "link", "show", "d0"], check: false), r.status == 0 else { return nil }
        let words = r.stdout.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard let i = words.firstIndex(of: "numrxqueues"), i + 1 < words.count else { return nil }
        return Int(words[i + 1])
    }

    /// Creates the testbed; when it exists with the same queue count it is left as is.
    /// Returns true when something was created.
    /// `mtu`: every port's MTU (jumbo frames: 9000, EC2's 9001); an existing
    /// testbed with other MTUs gets this one.
    @discardableResult
    public func up(queues: Int, mtu: Int = 1500) throws(LanesError) -> Bool {
        try Testbed.validate(name: name)
        try Testbed.preflight()
        guard queues >= 1 && queues <= 256 else {
            throw LanesError("bad queue count \(queues)", fix: "use 1-256 (veth's limit is the number of possible CPUs times 16)")
        }
        guard mtu >= 68 && mtu <= 65535 else { throw LanesError("bad MTU \(mtu)", fix: "use 68-65535 (e.g. 9000 for jumbo frames)") }
        if queueCount() == queues {
            try setMTU(mtu)
            return false
        }
        try down()
        do {
            try build(queues: queues)
            try setMTU(mtu)
        } catch {
            try? down()
            throw error
        }
        return true
    }

    /// The MTU of every port, where it differs.
    public func setMTU(_ mtu: Int) throws(LanesError) {
        for p in ports where self.mtu(of: p) != mtu {
            try Shell.run(["ip", "-n", p.namespace, "link", "set", "dev", p.interface, "mtu", "\(mtu)"])
        }
    }

    /// A port's MTU now (nil: not there).
    public func mtu(of p: Port) -> Int? {
        guard let r = try? Shell.run(["ip", "-n", p.namespace, "-o", "link", "show", p.interface], check: false), r.status == 0 else { return nil }
        let words = r.stdout.split(separator: " ")
        guard let i = words.firstIndex(of: "mtu"), i + 1 < words.count else { return nil }
        return Int(words[i + 1])
    }

    private func build(queues q: Int) throws(LanesError) {
        for ns in namespaces { try Shell.run(["ip", "netns", "add", ns]) }
        let qs = ["numrxqueues", "\(q)", "numtxqueues", "\(q)"]
        func veth(_ a: Port, _ b: Port) throws(LanesError) {
            try Shell.run(["ip", "-n", a.namespace, "link", "add", a.interface] + qs + ["address", a.mac, "type", "veth",
                           "peer", "name", b.interface] + qs + ["address", b.mac, "netns", b.namespace])
        }
        try veth(g0, d0)
        try veth(d1, s0)
        for p in ports {
            try Shell.run(["ip", "-n", p.namespace, "link", "set", "lo", "up"])
            try Shell.run(["ip", "-n", p.namespace, "addr", "add", "\(p.ipv4)/24", "dev", p.interface])
            try Shell.run(["ip", "-n", p.namespace, "-6", "addr", "add", "\(p.ipv6)/64", "dev", p.interface, "nodad"])
            try Shell.run(["ip", "-n", p.namespace, "link", "set", p.interface, "up"])
        }
        // Static neighbours: no ARP/NDP needed for traffic to flow.
        for (from, to) in [(g0, d0), (d0, g0), (d1, s0), (s0, d1)] {
            try Shell.run(["ip", "-n", from.namespace, "neigh", "replace", to.ipv4, "lladdr", to.mac, "dev", from.interface, "nud", "permanent"])
            try Shell.run(["ip", "-n", from.namespace, "-6", "neigh", "replace", to.ipv6, "lladdr", to.mac, "dev", from.interface, "nud", "permanent"])
        }
        // The generator's side reaches the whole benchmarking range through the dut, and back.
        try Shell.run(["ip", "-n", gen, "route", "add", "198.18.0.0/15", "via", d0.ipv4])
        try Shell.run(["ip", "-n", sink, "route", "add", "198.18.0.0/15", "via", d1.ipv4])
        try Shell.run(["ip", "-n", gen, "-6", "route", "add", "fd00:198:18::/48", "via", d0.ipv6])
        try Shell.run(["ip", "-n", sink, "-6", "route", "add", "fd00:198:18::/48", "via", d1.ipv6])
        try Shell.run(["ip", "netns", "exec", dut, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"])
        // GRO gives a veth NAPI, and a veth takes redirected frames (XDP live frames,
        // XDP forwarding) only while its peer has NAPI, as a NIC always takes them: so
        // `lanes gen --tx xdp` reaches d0, and `lanes fwd --path xdp` reaches s0 (and
        // g0, both ways), even when the kernel stack, not an XDP program, receives there.
        for p in [d0, s0, g0] { try Shell.run(["ip", "netns", "exec", p.namespace, "ethtool", "-K", p.interface, "gro", "on"]) }
    }

    /// Removes everything the testbed made (deleting a namespace deletes its veths
    /// and any XDP program on them). Harmless when nothing exists.
    public func down() throws(LanesError) {
        try Testbed.validate(name: name)
        try requireRoot(for: "the testbed")
        var failures: [String] = []
        for ns in namespaces where NetworkNamespace.exists(ns) {
            if let r = try? Shell.run(["ip", "netns", "del", ns], check: false), r.status != 0 {
                failures.append("\(ns): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
            }
        }
        if !failures.isEmpty { throw LanesError("could not remove " + failures.joined(separator: ", ")) }
    }

    public struct Status: Codable, Sendable {
        public var name: String
        /// "veth" here; "vm" for VMTestbed's.
        public var kind = "veth"
        public var up: Bool
        public var queues: Int?
        public var namespaces: [String: Bool]
        public var ports: [Port]
        public var attachedXDP: [String: String]
    }

    public func status() -> Status {
        var ns: [String: Bool] = [:]
        for n in namespaces { ns[n] = NetworkNamespace.exists(n) }
        var xdp: [String: String] = [:]
        for p in ports where ns[p.namespace] == true {
            if let r = try? Shell.run(["ip", "-n", p.namespace, "-o", "link", "show", p.interface], check: false),
               let range = r.stdout.range(of: "prog/xdp id ") {
                xdp["\(p.namespace):\(p.interface)"] = String(r.stdout[range.upperBound...].prefix(while: { $0.isNumber }))
            }
        }
        return Status(name: name, up: exists(), queues: queueCount(), namespaces: ns, ports: ports, attachedXDP: xdp)
    }
}
