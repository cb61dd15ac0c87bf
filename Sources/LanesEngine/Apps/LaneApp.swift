import LanesXDP
import LanesCore
import LanesPacket

/// What a lane gives its app: the UMEM bytes and the lane's counters.
public struct LaneContext {
    /// Start of the lane's UMEM; a descriptor's `addr` is an offset into it.
    public let umem: UnsafeMutableRawPointer
    public let frameSize: Int
    /// The lane's stats block (LaneCounter slots).
    public let counters: LaneCounters
    /// Multi-buffer lanes (AF_XDP XDP_USE_SG): the burst's descriptors in ring
    /// order. There an app's descriptor is a packet's first buffer with the whole
    /// packet's `len`, and `options` is the index here of that first buffer; the
    /// packet's buffers follow it, XDP_PKT_CONTD set on all but the last. nil: one
    /// buffer per packet. Every header an app edits lies in the first buffer
    /// (the lane drops, as malformed, a packet whose first buffer holds less than
    /// `LaneContext.headerBytes` of it).
    public let chain: UnsafeMutablePointer<FrameDesc>?

    /// The bytes of a packet the lane guarantees are in its first buffer (or the
    /// whole packet, if shorter): Ethernet, two VLAN tags, IPv6 and a TCP header with options.
    public static let headerBytes = 128

    public init(umem: UnsafeMutableRawPointer, frameSize: Int, counters: LaneCounters, chain: UnsafeMutablePointer<FrameDesc>? = nil) {
        self.umem = umem; self.frameSize = frameSize; self.counters = counters; self.chain = chain
    }

    @inlinable @inline(__always)
    public func bytes(_ d: FrameDesc) -> UnsafeMutableRawPointer { umem + Int(d.addr) }

    /// How many bytes of `d`'s packet lie contiguous at `bytes(d)`: all of them,
    /// except in a multi-buffer packet (its first buffer).
    @inlinable @inline(__always)
    public func headLength(_ d: FrameDesc) -> Int {
        guard let chain else { return Int(d.len) }
        return Int(chain[Int(d.options)].len)
    }

    /// Calls `body` with each buffer of `d`'s packet in order (one, unless multi-buffer).
    @inlinable
    public func forEachBuffer(_ d: FrameDesc, _ body: (UnsafeRawBufferPointer) -> Void) {
        guard let chain else {
            body(UnsafeRawBufferPointer(start: umem + Int(d.addr), count: Int(d.len)))
            return
        }
        var i = Int(d.options)
        while true {
            let b = chain[i]
            body(UnsafeRawBufferPointer(start: umem + Int(b.addr), count: Int(b.len)))
            if b.options & FrameDesc.continues == 0 { break }
            i &+= 1
        }
    }
}

/// An app runs inside a lane: a burst in, a burst out. It partitions the burst in
/// place so that the first k descriptors are to be transmitted and returns k; the
/// rest are recycled as drops (the app counts their cause). Apps are value types
/// and the lane is generic over its app: no existentials on the per-packet path.
public protocol LaneApp {
    mutating func process(_ burst: UnsafeMutablePointer<FrameDesc>, count: Int, context: LaneContext) -> Int

    /// Generators: how many of the lane's `frameCount` frames the app wants for
    /// its own packets (0: it only handles received packets).
    func generatorFrames(of frameCount: Int) -> Int
    /// Called once, before the loop, with the generator frames' indices: build
    /// the packets there (they are then reused, rewriting only what changes).
    mutating func prepare(generatorFrames: Range<Int>, context: LaneContext)
    /// How many packets the app may send now, at most `limit` (rate, count).
    mutating func budget(_ limit: Int, now: UInt64) -> Int
    /// Fill `count` generator frames (burst holds their addresses; set `len`).
    mutating func generate(_ burst: UnsafeMutablePointer<FrameDesc>, count: Int, now: UInt64, context: LaneContext)
    /// True once a generator has sent all it was asked to.
    var finished: Bool { get }
    /// Generators: the longest packet they send (a multi-buffer lane gives each
    /// generator packet enough consecutive frames for it).
    var largestPacket: Int { get }
    /// Apps that hand packets to another lane (pipeline fan-out): `process`
    /// returns the number of drops placed first in the burst; the rest left the lane.
    static var handsOff: Bool { get }
    /// Hands-off apps: frames other lanes are done with, back into the lane's pool.
    mutating func reclaim(into pool: inout FramePool)
}

extension LaneApp {
    public func generatorFrames(of frameCount: Int) -> Int { 0 }
    public mutating func prepare(generatorFrames: Range<Int>, context: LaneContext) {}
    public mutating func budget(_ limit: Int, now: UInt64) -> Int { 0 }
    public mutating func generate(_ burst: UnsafeMutablePointer<FrameDesc>, count: Int, now: UInt64, context: LaneContext) {}
    public var finished: Bool { false }
    public var largestPacket: Int { 0 }
    public static var handsOff: Bool { false }
    public mutating func reclaim(into pool: inout FramePool) {}
}

/// `lanes drop`: count and recycle.
public struct DropApp: LaneApp {
    public init() {}
    @inlinable
    public mutating func process(_ burst: UnsafeMutablePointer<FrameDesc>, count: Int, context: LaneContext) -> Int {
        context.counters.add(.dropApp, UInt64(count))
        return 0
    }
}

/// `lanes fwd --mode macswap`: swap the Ethernet addresses and send the packet
/// back out of the same queue.
public struct MacSwapApp: LaneApp {
    public init() {}
    @inlinable
    public mutating func process(_ burst: UnsafeMutablePointer<FrameDesc>, count: Int, context: LaneContext) -> Int {
        let counters = context.counters
        return LaneApps.partition(burst, count: count, prefetching: context) { d in
            if d.len < 14 {
                counters.add(.dropMalformed, 1)
                return false
            }
            EthernetEdit.swapAddresses(context.bytes(d))
            return true
        }
    }
}

public enum LaneApps {
    /// Frames prefetched ahead of the one being handled (DPDK's l2fwd uses 3-8).
    public static let prefetchDistance = 4

    /// Stable partition of a burst by `keep`, swapping so no descriptor is lost:
    /// kept ones first, in order; dropped ones after. Returns the kept count.
    /// With `prefetching`, the frame `prefetchDistance` ahead is prefetched (apps
    /// that touch packet bytes: its header is most likely not in this core's cache).
    @inlinable @inline(__always)
    public static func partition(_ burst: UnsafeMutablePointer<FrameDesc>, count: Int, prefetching context: LaneContext? = nil,
                                 keep: (inout FrameDesc) -> Bool) -> Int {
        var kept = 0
        if let context {
            for i in 0..<min(prefetchDistance, count) { prefetchForWrite(context.bytes(burst[i])) }
        }
        for i in 0..<count {
            if let context, i &+ prefetchDistance < count { prefetchForWrite(context.bytes(burst[i &+ prefetchDistance])) }
            if keep(&burst[i]) {
                if i != kept {
                    let t = burst[i]; burst[i] = burst[kept]; burst[kept] = t
                }
                kept &+= 1
            }
        }
        return kept
    }
}

