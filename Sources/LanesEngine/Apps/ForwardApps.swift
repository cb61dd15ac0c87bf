import LanesXDP
import Glibc
import LanesCore
import LanesPacket

/// `lanes fwd --mode io`: forward unchanged (lane i of IN to queue i of OUT).
public struct IOApp: LaneApp {
    public init() {}
    @inlinable
    public mutating func process(_ burst: UnsafeMutablePointer<FrameDesc>, count: Int, context: LaneContext) -> Int { count }
}

/// `lanes fwd --mode l2`: destination MAC := the next hop, source MAC := the out port's.
public struct L2App: LaneApp {
    @usableFromInline let dst: (UInt32, UInt16)
    @usableFromInline let src: (UInt16, UInt32)

    public init(nextHop: MACAddress, source: MACAddress) {
        let d = nextHop.array, s = source.array
        dst = (UInt32(d[0]) | UInt32(d[1]) << 8 | UInt32(d[2]) << 16 | UInt32(d[3]) << 24, UInt16(d[4]) | UInt16(d[5]) << 8)
        src = (UInt16(s[0]) | UInt16(s[1]) << 8, UInt32(s[2]) | UInt32(s[3]) << 8 | UInt32(s[4]) << 16 | UInt32(s[5]) << 24)
    }

    @inlinable
    public mutating func process(_ burst: UnsafeMutablePointer<FrameDesc>, count: Int, context: LaneContext) -> Int {
        let counters = context.counters, dst = self.dst, src = self.src
        return LaneApps.partition(burst, count: count) { d in
            guard d.len >= 14 else { counters.add(.dropMalformed, 1); return false }
            let p = context.bytes(d)
            p.storeBytes(of: dst.0, as: UInt32.self)
            p.storeBytes(of: dst.1, toByteOffset: 4, as: UInt16.self)
            p.storeBytes(of: src.0, toByteOffset: 6, as: UInt16.self)
            p.storeBytes(of: src.1, toByteOffset: 8, as: UInt32.self)
            return true
        }
    }
}

/// The L3 tables for one out port: the LPM tables and, per route, the next-hop
/// MAC and whether the route leaves by this port.
public final class L3Tables: @unchecked Sendable {
    let v4: LPMTable
    let v6: LPMTable
    /// Per route: the next-hop MAC as two words (stored as the frame's bytes).
    let nextHops: UnsafeMutablePointer<(UInt32, UInt16)>
    let usable: UnsafeMutablePointer<Bool>
    public let routeCount: Int

    /// `outPort` selects the routes whose port is this half's out port (routes
    /// without a port apply to every port).
    public init(routes: RouteTable, outPort: String) {
        v4 = routes.v4
        v6 = routes.v6
        routeCount = routes.routes.count
        nextHops = .allocate(capacity: max(routeCount, 1))
        usable = .allocate(capacity: max(routeCount, 1))
        for (i, r) in routes.routes.enumerated() {
            let d = r.nextHop.array
            nextHops[i] = (UInt32(d[0]) | UInt32(d[1]) << 8 | UInt32(d[2]) << 16 | UInt32(d[3]) << 24, UInt16(d[4]) | UInt16(d[5]) << 8)
            usable[i] = r.port == nil || r.port == outPort
        }
    }

    deinit { nextHops.deallocate(); usable.deallocate() }
}

/// What a router does to an IP packet once a route is chosen: checks the header,
/// decrements TTL or hop limit, and trims an Ethernet pad past the IP length.
/// Shared by both l3 apps; counts what it drops.
@usableFromInline enum IPForwarding {
    /// The packet's family (4 or 6) when it may be forwarded: well formed, IPv4
    /// header checksum right, TTL or hop limit above 1; else counted and nil.
    @inlinable @inline(__always)
    static func check(_ p: UnsafeMutableRawPointer, len: Int, _ c: LaneCounters) -> Int? {
        guard len >= 14 else { c.add(.dropMalformed, 1); return nil }
        let type = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 12, as: UInt16.self))
        if type == 0x0800 {
            guard len >= 34 else { c.add(.dropMalformed, 1); return nil }
            let ihl = Int(p.load(fromByteOffset: 14, as: UInt8.self) & 15) * 4
            let total = Int(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 16, as: UInt16.self)))
            // IHL below 5, or a header or total length past the frame: never forwarded.
            guard p.load(fromByteOffset: 14, as: UInt8.self) >> 4 == 4, ihl >= 20, 14 + ihl <= len, total >= ihl, 14 + total <= len else {
                c.add(.dropMalformed, 1); return nil
            }
            guard Checksum.fold(Checksum.sum(p + 14, count: ihl)) == 0xffff else { c.add(.dropBadChecksum, 1); return nil }
            guard p.load(fromByteOffset: 22, as: UInt8.self) > 1 else { c.add(.dropTTL, 1); return nil }
            return 4
        } else if type == 0x86dd {
            guard len >= 54, p.load(fromByteOffset: 14, as: UInt8.self) >> 4 == 6,
                  54 + Int(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 18, as: UInt16.self))) <= len else {
                c.add(.dropMalformed, 1); return nil // payload length past the frame
            }
            guard p.load(fromByteOffset: 21, as: UInt8.self) > 1 else { c.add(.dropTTL, 1); return nil }
            return 6
        }
        c.add(.dropNonIP, 1)
        return nil
    }

    /// TTL (with the kernel's checksum update) or hop limit less one; returns the
    /// frame's length without any pad past the IP packet (a router forwards the
    /// IP packet, not the frame it came in).
    @inlinable @inline(__always)
    static func decrement(_ p: UnsafeMutableRawPointer, family: Int) -> UInt32 {
        if family == 4 {
            p.storeBytes(of: p.load(fromByteOffset: 22, as: UInt8.self) &- 1, toByteOffset: 22, as: UInt8.self)
            let ck = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 24, as: UInt16.self))
            p.storeBytes(of: Checksum.afterTTLDecrement(ck).bigEndian, toByteOffset: 24, as: UInt16.self)
            return 14 + UInt32(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 16, as: UInt16.self)))
        }
        p.storeBytes(of: p.load(fromByteOffset: 21, as: UInt8.self) &- 1, toByteOffset: 21, as: UInt8.self)
        return 54 + UInt32(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 18, as: UInt16.self)))
    }
}

/// `lanes fwd --mode l3 --routes FILE`: longest-prefix match on the destination
/// (IPv4 and IPv6) in a fixed table, TTL/hop-limit decrement with the kernel's
/// checksum update, MACs from the route (its neighbour) and the out port. Drops
/// are counted by cause: TTL expiry, no route, bad IPv4 header checksum, non-IP,
/// malformed.
public struct L3App: LaneApp {
    /// The app's own reference keeps them; read unmanaged in the burst (no ARC per burst).
    let owner: L3Tables
    let tables: Unmanaged<L3Tables>
    let src: (UInt16, UInt32)

    public init(routes: RouteTable, outPort: String, source: MACAddress) {
        owner = L3Tables(routes: routes, outPort: outPort)
        tables = Unmanaged.passUnretained(owner)
        let s = source.array
        src = (UInt16(s[0]) | UInt16(s[1]) << 8, UInt32(s[2]) | UInt32(s[3]) << 8 | UInt32(s[4]) << 16 | UInt32(s[5]) << 24)
    }

    public mutating func process(_ burst: UnsafeMutablePointer<FrameDesc>, count: Int, context: LaneContext) -> Int {
        tables._withUnsafeGuaranteedRef { forward(burst, count: count, context: context, $0) }
    }

    @inline(__always)
    func forward(_ burst: UnsafeMutablePointer<FrameDesc>, count: Int, context: LaneContext, _ tables: L3Tables) -> Int {
        let c = context.counters
        let v4 = tables.v4, v6 = tables.v6, usable = tables.usable, nextHops = tables.nextHops, src = self.src
        var kept = 0
        for i in 0..<count {
            var d = burst[i]
            let p = context.bytes(d)
            guard let family = IPForwarding.check(p, len: Int(d.len), c) else { continue }
            let route = family == 4 ? v4.lookup(v4: UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 30, as: UInt32.self)))
                                    : v6.lookup(v6: IPv6Address(reading: p + 38))
            guard let r = route, usable[r] else { c.add(.dropNoRoute, 1); continue }
            d.len = IPForwarding.decrement(p, family: family)
            let nh = nextHops[r]
            p.storeBytes(of: nh.0, as: UInt32.self)
            p.storeBytes(of: nh.1, toByteOffset: 4, as: UInt16.self)
            p.storeBytes(of: src.0, toByteOffset: 6, as: UInt16.self)
            p.storeBytes(of: src.1, toByteOffset: 8, as: UInt32.self)
            burst[i] = burst[kept]
            burst[kept] = d
            kept &+= 1
        }
        return kept
    }
}

/// `lanes fwd --mode l3 --routes kernel`: the kernel's FIB has already decided in
/// the XDP program (one bpf_fib_lookup per packet: rules, every table and route
/// type, the kernel's multipath choice, the egress MTU), and only a packet the
/// kernel would forward by this lane's out port reaches it, its MACs already the
/// next hop's and the port's. The lane checks the header and decrements TTL or
/// hop limit, as the kernel's ip_forward would; no second lookup.
public struct L3FIBApp: LaneApp {
    public init() {}

    @inlinable
    public mutating func process(_ burst: UnsafeMutablePointer<FrameDesc>, count: Int, context: LaneContext) -> Int {
        let c = context.counters
        var kept = 0
        for i in 0..<count {
            var d = burst[i]
            let p = context.bytes(d)
            guard let family = IPForwarding.check(p, len: Int(d.len), c) else { continue }
            d.len = IPForwarding.decrement(p, family: family)
            burst[i] = burst[kept]
            burst[kept] = d
            kept &+= 1
        }
        return kept
    }
}
