import LanesCore
import LanesXDP

/// The transmit half of a lane: a TX ring, its completion ring, the descriptors
/// in flight between them, and the kick policy. The one place that puts packets
/// on a TX ring and takes completions off it, for the lanes and the pipeline's
/// workers alike. Kicks the kernel only when need_wakeup asks (or after every
/// burst with `kickEveryBurst`, `--latency`).
public struct Transmitter: ~Copyable {
    public let rings: TXRings
    @usableFromInline let counters: LaneCounters
    /// TX descriptors submitted and not yet completed.
    public var outstanding: Int = 0
    /// `--latency`: kick after every burst submitted, not only when the kernel asks.
    public var kickEveryBurst = false

    public init(_ rings: consuming TXRings, counters: LaneCounters) {
        self.rings = rings
        self.counters = counters
    }

    /// Puts burst[0..<count] on the TX ring as they are (one buffer each);
    /// returns how many went. The rest are counted as TX-ring-full drops and left
    /// for the caller to recycle.
    @inlinable @inline(__always)
    public mutating func transmit(_ burst: UnsafeMutablePointer<FrameDesc>, count: Int) -> Int {
        var idx: UInt32 = 0
        let room = Int(rings.tx.free(UInt32(count)))
        let r = room > 0 ? Int(rings.tx.reserve(UInt32(min(count, room)), &idx)) : 0
        let c = counters
        if r > 0 {
            var bytes: UInt64 = 0
            let slots = rings.tx.slots(from: idx)
            for i in 0..<r {
                let d = burst[i]
                slots[i] = FrameDesc(addr: d.addr, len: d.len, options: 0)
                bytes &+= UInt64(d.len)
            }
            rings.tx.submit(UInt32(r))
            outstanding &+= r
            c.add(.txPackets, UInt64(r))
            c.add(.txBytes, bytes)
            kickIfAsked(always: kickEveryBurst)
        }
        if r < count { c.add(.dropTxRingFull, UInt64(count - r)) }
        return r
    }

    /// Multi-buffer: puts packets heads[0..<count] (their buffers in `chain`, see
    /// `Chains`) on the TX ring, each whole or not at all, in order. A packet
    /// with more buffers than `maxSegments`, or for which the ring has no room, is
    /// counted and marked unsent (its head's `len` set to 0) for the caller to
    /// recycle. Returns the packets that went.
    @inlinable
    public mutating func transmitChains(_ heads: UnsafeMutablePointer<FrameDesc>, count: Int, chain: UnsafeMutablePointer<FrameDesc>,
                                        maxSegments: Int) -> Int {
        let contd = FrameDesc.continues, c = counters
        @inline(__always) func segments(_ head: FrameDesc) -> Int {
            var j = Int(head.options), n = 1
            while chain[j].options & contd != 0 { j &+= 1; n &+= 1 }
            return n
        }
        var need = 0
        for i in 0..<count { let s = segments(heads[i]); if s <= maxSegments { need &+= s } }
        let room = need > 0 ? Int(rings.tx.free(UInt32(need))) : 0
        // The packets that go: every one that fits, in order, until the ring is full.
        var fit = 0, full = false
        for i in 0..<count {
            let s = segments(heads[i])
            if s > maxSegments || full || fit &+ s > room {
                if s > maxSegments { c.add(.dropTooManyFrags, 1) } else { full = true; c.add(.dropTxRingFull, 1) }
                heads[i].len = 0 // marks it unsent
                continue
            }
            fit &+= s
        }
        guard fit > 0 else { return 0 }
        var idx: UInt32 = 0
        let r = Int(rings.tx.reserve(UInt32(fit), &idx))
        precondition(r == fit, "TX ring room checked")
        let slots = rings.tx.slots(from: idx)
        var k = 0, sent = 0
        var bytes: UInt64 = 0
        for i in 0..<count where heads[i].len > 0 {
            Chains.forEachBuffer(of: heads[i], in: chain) { d in
                slots[k] = FrameDesc(addr: d.addr, len: d.len, options: d.options & contd)
                k &+= 1
            }
            bytes &+= UInt64(heads[i].len)
            sent &+= 1
        }
        rings.tx.submit(UInt32(fit))
        outstanding &+= fit
        c.add(.txPackets, UInt64(sent))
        c.add(.txBytes, bytes)
        kickIfAsked(always: kickEveryBurst)
        return sent
    }

    /// Up to `max` completed frame addresses, peeked: read them from `slots`,
    /// then `release` them. None while nothing is in flight.
    @inlinable @inline(__always)
    public func completed(max: Int) -> (slots: RingSlots<UInt64>, count: Int) {
        guard outstanding > 0 else { return (rings.completion.slots(from: 0), 0) }
        var idx: UInt32 = 0
        let n = Int(rings.completion.peek(UInt32(max), &idx))
        return (rings.completion.slots(from: idx), n)
    }

    /// Hands `count` read completions back; while TX is still in flight, kicks
    /// when the kernel asks (copy mode sends only when kicked).
    @inlinable @inline(__always)
    public mutating func release(_ count: Int) {
        if count > 0 {
            rings.completion.release(UInt32(count))
            outstanding &-= count
        }
        if outstanding > 0 { kickIfAsked(always: false) }
    }

    /// A kick when need_wakeup asks for one (or `always`), counted.
    @inlinable @inline(__always)
    public func kickIfAsked(always: Bool) {
        if always || rings.tx.needsWakeup {
            rings.socket.kickTX()
            counters.add(.txKicks, 1)
        }
    }

    /// A kick whatever the flags say (draining at the end of a run).
    public func kick() { rings.socket.kickTX() }
}
