/// The 5-tuple that names a flow.
public struct FlowKey: Hashable, Sendable, CustomStringConvertible {
    public var src: IPAddress
    public var dst: IPAddress
    public var srcPort: UInt16
    public var dstPort: UInt16
    /// 17 UDP, 6 TCP.
    public var proto: UInt8

    public init(src: IPAddress, dst: IPAddress, srcPort: UInt16, dstPort: UInt16, proto: UInt8 = 17) {
        self.src = src; self.dst = dst; self.srcPort = srcPort; self.dstPort = dstPort; self.proto = proto
    }

    /// The flow of a parsed packet, when it has IP and ports.
    public init?(_ r: ParsedPacket) {
        guard r.layers.contains(.udp) || r.layers.contains(.tcp) else { return nil }
        if r.layers.contains(.ipv4) {
            src = .v4(IPv4Address(r.ipv4Src)); dst = .v4(IPv4Address(r.ipv4Dst))
        } else {
            src = .v6(r.ipv6Src); dst = .v6(r.ipv6Dst)
        }
        srcPort = r.srcPort; dstPort = r.dstPort; proto = r.ipProtocol
    }

    /// The RSS hash input, as NICs build it: source address, destination address,
    /// then (with ports) source port and destination port, all in network order.
    public func rssInput(withPorts: Bool = true) -> [UInt8] {
        var b: [UInt8] = []
        for a in [src, dst] {
            switch a {
            case .v4(let v): b += [UInt8(v.value >> 24), UInt8(v.value >> 16 & 255), UInt8(v.value >> 8 & 255), UInt8(v.value & 255)]
            case .v6(let v): b += v.bytes
            }
        }
        if withPorts { b += [UInt8(srcPort >> 8), UInt8(srcPort & 255), UInt8(dstPort >> 8), UInt8(dstPort & 255)] }
        return b
    }

    public var description: String {
        let p = proto == 6 ? "tcp" : proto == 17 ? "udp" : "proto \(proto)"
        return "\(p) \(src):\(srcPort) -> \(dst):\(dstPort)"
    }
}

/// The Toeplitz hash as NICs compute it.
public struct Toeplitz: Sendable {
    /// The 40-byte key Microsoft publishes with its RSS verification suite; most
    /// drivers default to it (or a random key they report through ethtool).
    public static let standardKey: [UInt8] = [
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
        0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
        0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
    ]

    public let key: [UInt8]
    public init(key: [UInt8] = Toeplitz.standardKey) { self.key = key }

    /// Inputs longer than key.count - 4 bytes use the key bits there are, then zeros.
    public func hash(_ input: [UInt8]) -> UInt32 {
        var result: UInt32 = 0
        var window: UInt32 = 0
        for i in 0..<4 { window = window << 8 | UInt32(i < key.count ? key[i] : 0) }
        for (i, byte) in input.enumerated() {
            let next = i + 4 < key.count ? key[i + 4] : 0
            for bit in 0..<8 {
                if byte & (0x80 >> UInt8(bit)) != 0 { result ^= window }
                window = window << 1 | UInt32((next >> (7 - UInt8(bit))) & 1)
            }
        }
        return result
    }

    public func hash(_ flow: FlowKey, withPorts: Bool = true) -> UInt32 { hash(flow.rssInput(withPorts: withPorts)) }
}

/// An interface's RSS: key, hash and indirection table, hash -> queue.
/// Whether a device's RSS hashes the ports, per flow type (ETHTOOL_GRXFH's
/// L4 bytes); without them a flow hashes its two addresses only.
public struct RSSPortHashing: Sendable, Codable, Equatable {
    public var tcp4, udp4, tcp6, udp6: Bool
    public init(tcp4: Bool = true, udp4: Bool = true, tcp6: Bool = true, udp6: Bool = true) {
        (self.tcp4, self.udp4, self.tcp6, self.udp6) = (tcp4, udp4, tcp6, udp6)
    }
    /// "udp4 by addresses only" style: the flow types hashed without their ports.
    public var summary: String {
        let off = [("tcp4", tcp4), ("udp4", udp4), ("tcp6", tcp6), ("udp6", udp6)].filter { !$0.1 }.map(\.0)
        return off.isEmpty ? "every type with ports" : off.joined(separator: ", ") + " by addresses only"
    }

    public func ports(for f: FlowKey) -> Bool {
        switch (f.proto, f.src.isV6) {
        case (6, false): tcp4
        case (6, true): tcp6
        case (17, false): udp4
        case (17, true): udp6
        default: false
        }
    }
}

public struct RSSTable: Sendable {
    public let toeplitz: Toeplitz
    public let indirection: [UInt32]
    public let portHashing: RSSPortHashing

    public init(key: [UInt8] = Toeplitz.standardKey, indirection: [UInt32], portHashing: RSSPortHashing = RSSPortHashing()) {
        toeplitz = Toeplitz(key: key)
        self.indirection = indirection
        self.portHashing = portHashing
    }

    /// The kernel's default table (ethtool_rxfh_indir_default): entry i -> i mod queues.
    public init(queues: Int, key: [UInt8] = Toeplitz.standardKey, size: Int = 128) {
        self.init(key: key, indirection: (0..<size).map { UInt32($0 % max(queues, 1)) })
    }

    public func queue(forHash h: UInt32) -> Int {
        indirection.isEmpty ? 0 : Int(indirection[Int(h % UInt32(indirection.count))])
    }

    /// The flow's hash as the device computes it (with its ports where it hashes them).
    public func hash(_ flow: FlowKey) -> UInt32 { toeplitz.hash(flow, withPorts: portHashing.ports(for: flow)) }

    public func queue(for flow: FlowKey) -> Int { queue(forHash: hash(flow)) }
}

/// Finds 5-tuples that put K flows on each of N queues (`lanes flows`).
public enum FlowPlanner {
    public struct PlannedFlow: Sendable, Hashable {
        public var flow: FlowKey
        public var hash: UInt32
        public var queue: Int
    }

    /// Varies the source port from `template.srcPort` upward (then the source
    /// address) until every queue in 0..<queues has `perQueue` flows; where the
    /// device hashes this flow type by its addresses only, the source address.
    public static func plan(table: RSSTable, queues: Int, perQueue: Int, template: FlowKey,
                            maxTries: Int = 1_000_000) -> [PlannedFlow]? {
        guard queues >= 1, perQueue >= 0 else { return nil }
        var buckets = Array(repeating: [PlannedFlow](), count: queues)
        var remaining = queues * perQueue
        var f = template
        var tries = 0
        let ports = table.portHashing.ports(for: template)
        while remaining > 0 && tries < maxTries {
            let h = table.hash(f)
            let q = table.queue(forHash: h)
            if q < queues && buckets[q].count < perQueue {
                buckets[q].append(PlannedFlow(flow: f, hash: h, queue: q))
                remaining -= 1
            }
            tries += 1
            if f.srcPort == UInt16.max || !ports {
                if ports { f.srcPort = 1024 }
                if case .v4(let a) = f.src { f.src = .v4(IPv4Address(a.value &+ 1)) }
                else if case .v6(let a) = f.src { f.src = .v6(IPv6Address(high: a.high, low: a.low &+ 1)) }
            } else {
                f.srcPort &+= 1
            }
        }
        guard remaining == 0 else { return nil }
        // Interleave queues so that the first F flows of the list spread as evenly as RSS allows.
        var out: [PlannedFlow] = []
        for i in 0..<perQueue { for q in 0..<queues { out.append(buckets[q][i]) } }
        return out
    }
}
