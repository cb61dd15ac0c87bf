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

/// `lanes fwd --mode l3`: longest-prefix match on the destination (IPv4 and
/// IPv6), TTL/hop-limit decrement with an incremental checksum update, MACs from
/// the route (static neighbours) and the out port. Drops are counted by cause:
/// TTL expiry, no route, bad IPv4 header checksum, non-IP, malformed.
public struct L3App: LaneApp {
    let v4: LPMTable
    let v6: LPMTable
    /// Per route: the next-hop MAC, or nil where the route leaves by another port.
    let nextHops: UnsafeMutablePointer<(UInt32, UInt16)>
    let usable: UnsafeMutablePointer<Bool>
    let routeCount: Int
    let src: (UInt16, UInt32)

    /// `outPort` selects the routes whose port is this half's out port (routes
    /// without a port apply to every port).
    public init(routes: RouteTable, outPort: String, source: MACAddress) {
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
        let s = source.array
        src = (UInt16(s[0]) | UInt16(s[1]) << 8, UInt32(s[2]) | UInt32(s[3]) << 8 | UInt32(s[4]) << 16 | UInt32(s[5]) << 24)
    }

    public mutating func process(_ burst: UnsafeMutablePointer<FrameDesc>, count: Int, context: LaneContext) -> Int {
        let c = context.counters
        var kept = 0
        for i in 0..<count {
            let d = burst[i]
            let p = context.bytes(d)
            let len = Int(d.len)
            guard len >= 14 else { c.add(.dropMalformed, 1); continue }
            let type = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 12, as: UInt16.self))
            var route: Int? = nil
            if type == 0x0800 {
                guard len >= 34 else { c.add(.dropMalformed, 1); continue }
                let ihl = Int(p.load(fromByteOffset: 14, as: UInt8.self) & 15) * 4
                let total = Int(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 16, as: UInt16.self)))
                // IHL below 5, or a header or total length past the frame: never forwarded.
                guard p.load(fromByteOffset: 14, as: UInt8.self) >> 4 == 4, ihl >= 20, 14 + ihl <= len, total >= ihl, 14 + total <= len else {
                    c.add(.dropMalformed, 1); continue
                }
                guard Checksum.fold(Checksum.sum(p + 14, count: ihl)) == 0xffff else { c.add(.dropBadChecksum, 1); continue }
                let ttl = p.load(fromByteOffset: 22, as: UInt8.self)
                guard ttl > 1 else { c.add(.dropTTL, 1); continue }
                route = v4.lookup(v4: UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 30, as: UInt32.self)))
                guard let r = route, usable[r] else { c.add(.dropNoRoute, 1); continue }
                let old = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 22, as: UInt16.self))
                let new = old &- 0x0100
                p.storeBytes(of: new.bigEndian, toByteOffset: 22, as: UInt16.self)
                let ck = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 24, as: UInt16.self))
                p.storeBytes(of: Checksum.update(ck, old: old, new: new).bigEndian, toByteOffset: 24, as: UInt16.self)
            } else if type == 0x86dd {
                guard len >= 54, p.load(fromByteOffset: 14, as: UInt8.self) >> 4 == 6,
                      54 + Int(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 18, as: UInt16.self))) <= len else {
                    c.add(.dropMalformed, 1); continue // payload length past the frame
                }
                let hop = p.load(fromByteOffset: 21, as: UInt8.self)
                guard hop > 1 else { c.add(.dropTTL, 1); continue }
                route = v6.lookup(v6: IPv6Address(reading: p + 38))
                guard let r = route, usable[r] else { c.add(.dropNoRoute, 1); continue }
                p.storeBytes(of: hop - 1, toByteOffset: 21, as: UInt8.self)
            } else {
                c.add(.dropNonIP, 1)
                continue
            }
            let nh = nextHops[route!]
            p.storeBytes(of: nh.0, as: UInt32.self)
            p.storeBytes(of: nh.1, toByteOffset: 4, as: UInt16.self)
            p.storeBytes(of: src.0, toByteOffset: 6, as: UInt16.self)
            p.storeBytes(of: src.1, toByteOffset: 8, as: UInt32.self)
            if i != kept { let t = burst[i]; burst[i] = burst[kept]; burst[kept] = t }
            kept &+= 1
        }
        return kept
    }
}
