/// The kernel's forwarding state as rtnetlink dumps it (`ip route`, `ip neigh`):
/// the main table's unicast routes and the resolved neighbours, by interface
/// name. `lanes fwd --mode l3 --routes kernel` builds its route table from it.
public struct KernelRoutes: Sendable, Equatable {
    public struct Route: Sendable, Equatable {
        public var prefix: IPAddress
        public var length: Int
        /// nil: a connected route (the destination is the next hop).
        public var gateway: IPAddress?
        public var interface: String
        public init(prefix: IPAddress, length: Int, gateway: IPAddress?, interface: String) {
            self.prefix = prefix; self.length = length; self.gateway = gateway; self.interface = interface
        }
    }

    public struct Neighbour: Sendable, Equatable {
        public var address: IPAddress
        public var mac: MACAddress
        public var interface: String
        public init(address: IPAddress, mac: MACAddress, interface: String) {
            self.address = address; self.mac = mac; self.interface = interface
        }
    }

    public var routes: [Route]
    /// Neighbours with a link-layer address (reachable, stale, delay, probe, permanent).
    public var neighbours: [Neighbour]

    public init(routes: [Route], neighbours: [Neighbour]) { self.routes = routes; self.neighbours = neighbours }

    /// The lanes' table over `ports`: a gateway route takes its gateway's MAC on
    /// its interface; a connected route becomes one host route (/32, /128) per
    /// neighbour on its interface inside it (the longest prefix wins, so a host
    /// route also overrides a wider gateway route, as the kernel's neighbour
    /// would). Routes on other interfaces are left out; `unresolved` lists the
    /// gateway routes whose gateway has no neighbour entry yet.
    public func table(ports: Set<String>) -> (routes: [RouteTable.Route], unresolved: [Route]) {
        var out: [RouteTable.Route] = []
        var unresolved: [Route] = []
        var hosts = Set<String>()
        for r in routes where ports.contains(r.interface) {
            if let gw = r.gateway {
                if let n = neighbours.first(where: { $0.address == gw && $0.interface == r.interface }) {
                    out.append(.init(prefix: r.prefix, length: r.length, nextHop: n.mac, port: r.interface))
                } else {
                    unresolved.append(r)
                }
            } else {
                for n in neighbours where n.interface == r.interface && KernelRoutes.contains(r.prefix, r.length, n.address) {
                    let key = "\(n.address)"
                    if hosts.insert(key).inserted {
                        out.append(.init(prefix: n.address, length: n.address.isV6 ? 128 : 32, nextHop: n.mac, port: r.interface))
                    }
                }
            }
        }
        return (out, unresolved)
    }

    /// Whether `address` lies in `prefix/length` (same family).
    public static func contains(_ prefix: IPAddress, _ length: Int, _ address: IPAddress) -> Bool {
        switch (prefix, address) {
        case (.v4(let p), .v4(let a)):
            guard length > 0 else { return true }
            let mask: UInt32 = length >= 32 ? .max : ~(UInt32.max >> UInt32(length))
            return p.value & mask == a.value & mask
        case (.v6(let p), .v6(let a)):
            let pb = p.bytes, ab = a.bytes
            var left = length
            for i in 0..<16 where left > 0 {
                let bits = min(8, left)
                let m = UInt8(truncatingIfNeeded: 0xff << (8 - bits))
                if pb[i] & m != ab[i] & m { return false }
                left -= bits
            }
            return true
        default:
            return false
        }
    }
}
