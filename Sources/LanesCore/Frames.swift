/// One frame descriptor: where a packet lies in UMEM. Same layout as the kernel's
/// `struct xdp_desc` (addr, len, options), so bursts copy straight from the rings.
@frozen
public struct FrameDesc: Equatable, Sendable {
    public var addr: UInt64
    public var len: UInt32
    public var options: UInt32
    @inlinable public init(addr: UInt64, len: UInt32, options: UInt32 = 0) {
        self.addr = addr; self.len = len; self.options = options
    }
}

/// A lane's free frames: a LIFO stack of UMEM addresses owned by one thread
/// (single-producer, single-consumer by contract: the lane itself). LIFO keeps
/// recently used, cache-warm frames in play. Storage is allocated once.
public struct FramePool: ~Copyable {
    @usableFromInline let slots: UnsafeMutablePointer<UInt64>
    public let capacity: Int
    @usableFromInline var top: Int

    /// A pool holding every frame of an area: addresses 0, frameSize, 2*frameSize...
    public init(frameCount: Int, frameSize: Int) {
        capacity = frameCount
        slots = .allocate(capacity: max(frameCount, 1))
        for i in 0..<frameCount { slots[i] = UInt64((frameCount - 1 - i) * frameSize) }
        top = frameCount
    }

    deinit { slots.deallocate() }

    @inlinable public var count: Int { top }
    @inlinable public var isEmpty: Bool { top == 0 }

    /// Returns a frame to the pool. The pool can never overflow: it holds at most
    /// the frames it was created with, and every frame is in exactly one place.
    @inlinable @inline(__always)
    public mutating func push(_ addr: UInt64) {
        slots[top] = addr
        top &+= 1
    }

    @inlinable @inline(__always)
    public mutating func pop() -> UInt64 {
        top &-= 1
        return slots[top]
    }
}

/// Where a lane's frames are. Every frame is always in exactly one of these
/// places; `inFlight` is what the kernel holds between rings (TX consumed but not
/// yet completed) and is zero once the lane has drained.
public struct FrameLedger: Equatable, Sendable, Codable, CustomStringConvertible {
    public var total: Int
    public var free: Int
    public var fillRing: Int
    public var rxRing: Int
    public var inHands: Int
    public var txRing: Int
    public var completionRing: Int

    public init(total: Int, free: Int, fillRing: Int, rxRing: Int, inHands: Int, txRing: Int, completionRing: Int) {
        self.total = total; self.free = free; self.fillRing = fillRing; self.rxRing = rxRing
        self.inHands = inHands; self.txRing = txRing; self.completionRing = completionRing
    }

    public var accounted: Int { free + fillRing + rxRing + inHands + txRing + completionRing }
    public var inFlight: Int { total - accounted }
    public var balanced: Bool { accounted == total }

    public var description: String {
        "frames \(total): free \(free), fill \(fillRing), rx \(rxRing), hands \(inHands), tx \(txRing), completion \(completionRing)"
            + (balanced ? " (balanced)" : " (MISSING \(inFlight))")
    }
}
