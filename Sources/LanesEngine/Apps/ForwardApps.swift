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

/// One set of L3 tables for one out port: the LPM tables and, per route, the
/// next-hop MAC and whether the route leaves by this port. Built aside, then
/// published whole through an `L3TableSlot`; freed with the last reference.
public final class L3Tables: @unchecked Sendable {
    let v4: LPMTable
    let v6: LPMTable
    /// Per route: the next-hop MAC as two words (stored as the frame's bytes).
    let nextHops: UnsafeMutablePointer<(UInt32, UInt16)>
    let usable: UnsafeMutablePointer<Bool>
    public let routeCount: Int
    public let version: UInt64

    /// `outPort` selects the routes whose port is this half's out port (routes
    /// without a port apply to every port).
    public init(routes: RouteTable, outPort: String, version: UInt64 = 1) {
        v4 = routes.v4
        v6 = routes.v6
        routeCount = routes.routes.count
        self.version = version
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

/// The L3 tables the lanes forward by, replaced while they run without a lock
/// on the data path. The updater builds a new set aside and publishes it with one
/// store; the old set is released only once no lane can still be reading it.
/// Each lane marks itself inside a burst (a sequentially consistent store before
/// its load of the current set) and outside after it; the updater, after its own
/// store of the new set, waits for every lane it sees inside to come out.
public final class L3TableSlot: @unchecked Sendable {
    /// Word 0: the current set (Unmanaged, retained once by the slot). Lane i's
    /// mark at word 8 * (i + 1): 1 inside a burst, 0 outside; its own cache line.
    @usableFromInline let words: UnsafeMutablePointer<UInt64>
    public let lanes: Int
    /// Sets published after the first (updates applied).
    public private(set) var updates = 0

    public init(_ tables: L3Tables, lanes: Int) {
        self.lanes = max(lanes, 1)
        words = .allocate(capacity: 8 * (self.lanes + 1))
        words.initialize(repeating: 0, count: 8 * (self.lanes + 1))
        words[0] = UInt64(UInt(bitPattern: Unmanaged.passRetained(tables).toOpaque()))
    }

    deinit {
        Unmanaged<L3Tables>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(words[0]))!).release()
        words.deallocate()
    }

    /// The set lane `lane` reads until `leave` (the lane's thread only).
    @inlinable @inline(__always)
    public func enter(_ lane: Int) -> Unmanaged<L3Tables> {
        (words + 8 * (lane + 1)).storeSequentiallyConsistent(1)
        return Unmanaged.fromOpaque(UnsafeRawPointer(bitPattern: UInt(words.loadSequentiallyConsistent()))!)
    }

    @inlinable @inline(__always)
    public func leave(_ lane: Int) { (words + 8 * (lane + 1)).storeRelease(0) }

    /// The set in use now (the updater's thread, or after the run).
    public var current: L3Tables {
        Unmanaged<L3Tables>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(words.loadAcquire()))!).takeUnretainedValue()
    }

    /// Publishes `tables` (one updater thread): one store, then waits until every
    /// lane that may hold the old set has left its burst, then releases the old set.
    public func publish(_ tables: L3Tables) {
        let new = UInt64(UInt(bitPattern: Unmanaged.passRetained(tables).toOpaque()))
        let old = words[0]
        words.storeSequentiallyConsistent(new)
        for i in 0..<lanes {
            // A burst is microseconds; a lane stopped inside one would hold this forever, so give up after 1 s (and leak the set).
            var spins = 0
            while (words + 8 * (i + 1)).loadSequentiallyConsistent() != 0 {
                spins += 1
                if spins > 100_000 { return }
                usleep(10)
            }
        }
        Unmanaged<L3Tables>.fromOpaque(UnsafeRawPointer(bitPattern: UInt(old))!).release()
        updates += 1
    }
}

/// `lanes fwd --mode l3`: longest-prefix match on the destination (IPv4 and
/// IPv6), TTL/hop-limit decrement with an incremental checksum update, MACs from
/// the route (its neighbour) and the out port. Drops are counted by cause: TTL
/// expiry, no route, bad IPv4 header checksum, non-IP, malformed. The tables come
/// through an `L3TableSlot`, so a route follower can replace them while it runs.
public struct L3App: LaneApp {
    /// Unmanaged: the slot outlives the run (its owner keeps it); no ARC per burst.
    let slot: Unmanaged<L3TableSlot>
    let lane: Int
    let src: (UInt16, UInt32)
    /// Keeps a slot made by the plain initializer alive with the app.
    var owner: L3TableSlot?

    /// Fixed routes (a route file): a slot of its own.
    public init(routes: RouteTable, outPort: String, source: MACAddress) {
        let s = L3TableSlot(L3Tables(routes: routes, outPort: outPort), lanes: 1)
        self.init(slot: s, lane: 0, source: source)
        owner = s
    }

    /// Lane `lane` of the lanes that share `slot` (which must outlive the run).
    public init(slot: L3TableSlot, lane: Int, source: MACAddress) {
        precondition(lane < slot.lanes)
        self.slot = Unmanaged.passUnretained(slot)
        self.lane = lane
        owner = nil
        let s = source.array
        src = (UInt16(s[0]) | UInt16(s[1]) << 8, UInt32(s[2]) | UInt32(s[3]) << 8 | UInt32(s[4]) << 16 | UInt32(s[5]) << 24)
    }

    public mutating func process(_ burst: UnsafeMutablePointer<FrameDesc>, count: Int, context: LaneContext) -> Int {
        let lane = self.lane
        return slot._withUnsafeGuaranteedRef { slot in
            let tables = slot.enter(lane)
            defer { slot.leave(lane) }
            return tables._withUnsafeGuaranteedRef { forward(burst, count: count, context: context, $0) }
        }
    }

    @inline(__always)
    func forward(_ burst: UnsafeMutablePointer<FrameDesc>, count: Int, context: LaneContext, _ tables: L3Tables) -> Int {
        let c = context.counters
        let v4 = tables.v4, v6 = tables.v6, usable = tables.usable, nextHops = tables.nextHops, src = self.src
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
