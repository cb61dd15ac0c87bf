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

/// A lane's free frames: a ring of UMEM addresses owned by one thread (the lane
/// itself: single-producer, single-consumer by contract), with free-running
/// indices and a mask. Frames go in at the tail; `pop` takes the oldest (FIFO),
/// `popNewest` the one pushed last (LIFO: its bytes are most likely still in
/// cache, which is what a generator rewriting headers wants). Allocated once.
public struct FramePool: ~Copyable {
    @usableFromInline let slots: UnsafeMutablePointer<UInt64>
    @usableFromInline let mask: Int
    /// How many frames the pool was made with (it never holds more).
    public let capacity: Int
    @usableFromInline var head = 0 // next pop
    @usableFromInline var tail = 0 // next push

    /// A pool of `frameCount` frames starting at frame `first`: addresses
    /// first*frameSize, (first+1)*frameSize, ... in that order.
    public init(frameCount: Int, frameSize: Int, first: Int = 0) {
        capacity = frameCount
        var size = 1
        while size < max(frameCount, 1) { size <<= 1 }
        mask = size - 1
        slots = .allocate(capacity: size)
        for i in 0..<frameCount { slots[i] = UInt64((first + i) * frameSize) }
        tail = frameCount
    }

    /// A pool of `count` entries `base`, `base + stride`, ... (a multi-buffer
    /// generator's packets, each `stride` bytes of consecutive frames).
    public init(count: Int, base: UInt64, stride: Int) {
        capacity = count
        var size = 1
        while size < max(count, 1) { size <<= 1 }
        mask = size - 1
        slots = .allocate(capacity: size)
        for i in 0..<count { slots[i] = base + UInt64(i * stride) }
        tail = count
    }

    deinit { slots.deallocate() }

    @inlinable public var count: Int { tail &- head }
    @inlinable public var isEmpty: Bool { tail == head }

    /// Returns a frame. The pool cannot overflow: it holds at most the frames it
    /// was made with, and every frame is in exactly one place.
    @inlinable @inline(__always)
    public mutating func push(_ addr: UInt64) {
        slots[tail & mask] = addr
        tail &+= 1
    }

    @inlinable @inline(__always)
    public mutating func pop() -> UInt64 {
        let a = slots[head & mask]
        head &+= 1
        return a
    }

    /// The frame pushed last (the caller checked the pool is not empty).
    @inlinable @inline(__always)
    public mutating func popNewest() -> UInt64 {
        tail &-= 1
        return slots[tail & mask]
    }

    /// Pushes `count` frames given by `addr(i)`. The indices live in registers for
    /// the whole burst (stores through `slots` cannot alias them).
    @inlinable @inline(__always)
    public mutating func push(count: Int, _ addr: (Int) -> UInt64) {
        let s = slots, m = mask
        var t = tail
        for i in 0..<count {
            s[t & m] = addr(i)
            t &+= 1
        }
        tail = t
    }

    /// Pops `count` frames (the caller checked `count <= self.count`), handing each to `use`.
    @inlinable @inline(__always)
    public mutating func pop(count: Int, _ use: (Int, UInt64) -> Void) {
        let s = slots, m = mask
        var h = head
        for i in 0..<count {
            use(i, s[h & m])
            h &+= 1
        }
        head = h
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
    /// Zero-copy: frames a driver took from the fill ring for its own RX ring
    /// (posted for packets to come; they come back when the socket closes).
    /// Always 0 in copy mode, where the kernel holds none at rest.
    public var inDriver: Int

    public init(total: Int, free: Int, fillRing: Int, rxRing: Int, inHands: Int, txRing: Int, completionRing: Int, inDriver: Int = 0) {
        self.total = total; self.free = free; self.fillRing = fillRing; self.rxRing = rxRing
        self.inHands = inHands; self.txRing = txRing; self.completionRing = completionRing; self.inDriver = inDriver
    }

    public var accounted: Int { free + fillRing + rxRing + inHands + txRing + completionRing + inDriver }
    public var inFlight: Int { total - accounted }
    public var balanced: Bool { accounted == total }

    public var description: String {
        "frames \(total): free \(free), fill \(fillRing), rx \(rxRing), hands \(inHands), tx \(txRing), completion \(completionRing)"
            + (inDriver > 0 ? ", in the driver \(inDriver)" : "")
            + (balanced ? " (balanced)" : " (MISSING \(inFlight))")
    }
}

/// How a lane's frames are split between receiving (fill ring, RX) and its
/// generator's own packets: the one place that decides it, from the app's
/// request. Frames set-up already put on the fill ring (`primed`) are
/// receive frames whatever the app asks; the generator gets what it asked up to
/// the rest, in whole packets of `unit` frames (a multi-buffer packet's frames).
public enum FrameSplit {
    public static func split(frameCount: Int, requested: Int, primed: Int, unit: Int = 1) -> (receive: Int, generator: Int) {
        precondition(unit >= 1 && primed >= 0 && primed <= frameCount, "primed \(primed) of \(frameCount) frames")
        let g = min(max(requested, 0), frameCount - primed) / unit * unit
        return (frameCount - g, g)
    }
}
