import Synchronization

/// A cache line of padding between indices written by different threads.
@usableFromInline
struct CacheLinePad {
    var a: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0)
    @usableFromInline init() {}
}

/// The slots of an SPSCRing or MPMCRing: a power-of-two array of descriptors
/// addressed by free-running 32-bit indices, masked on access.
@frozen @usableFromInline
struct RingStorage {
    @usableFromInline let base: UnsafeMutablePointer<FrameDesc>
    @usableFromInline let mask: UInt32
    @usableFromInline let capacity: Int

    init(capacity: Int) {
        precondition(capacity >= 2 && capacity & (capacity - 1) == 0 && capacity <= 1 << 30, "capacity must be a power of two")
        self.capacity = capacity
        mask = UInt32(capacity - 1)
        base = .allocate(capacity: capacity)
    }

    func deallocate() { base.deallocate() }

    /// Copies burst[0..<count] into the slots from index `at` on.
    @inlinable @inline(__always)
    func write(_ burst: UnsafePointer<FrameDesc>, count: Int, at: UInt32) {
        for i in 0..<count { base[Int((at &+ UInt32(i)) & mask)] = burst[i] }
    }

    /// Copies `count` slots from index `at` on into out[0..<count].
    @inlinable @inline(__always)
    func read(into out: UnsafeMutablePointer<FrameDesc>, count: Int, at: UInt32) {
        for i in 0..<count { out[i] = base[Int((at &+ UInt32(i)) & mask)] }
    }
}

/// A bounded single-producer/single-consumer ring of frame descriptors between
/// two lanes (pipeline mode). Power-of-two size, free-running 32-bit indices
/// masked on access, burst enqueue/dequeue returning counts. A full ring takes
/// what fits: the producer drops and counts the rest, it never blocks.
/// Contract in the name: exactly one thread enqueues, exactly one dequeues.
public final class SPSCRing: @unchecked Sendable {
    @usableFromInline let slots: RingStorage
    public var capacity: Int { slots.capacity }
    /// Consumer index. Stored by the consumer with release after it has read the
    /// slots; loaded by the producer with acquire before it overwrites them.
    @usableFromInline let head = Atomic<UInt32>(0)
    @usableFromInline let pad0 = CacheLinePad()
    /// Producer index. Stored by the producer with release after it has written
    /// the slots; loaded by the consumer with acquire before it reads them.
    @usableFromInline let tail = Atomic<UInt32>(0)
    @usableFromInline let pad1 = CacheLinePad()
    /// Producer-only cache of `head`; consumer-only cache of `tail` (no sharing).
    @usableFromInline var producerCachedHead: UInt32 = 0
    @usableFromInline let pad2 = CacheLinePad()
    @usableFromInline var consumerCachedTail: UInt32 = 0

    public init(capacity: Int) { slots = RingStorage(capacity: capacity) }

    deinit { slots.deallocate() }

    /// Producer side: the free slots, from the cached consumer index unless fewer
    /// than `wanted` are known free.
    @inlinable @inline(__always)
    func free(wanted: Int, tail t: UInt32) -> UInt32 {
        var free = UInt32(slots.capacity) &- (t &- producerCachedHead)
        if free < UInt32(wanted) {
            producerCachedHead = head.load(ordering: .acquiring) // pairs with the consumer's releasing store
            free = UInt32(slots.capacity) &- (t &- producerCachedHead)
        }
        return free
    }

    /// Producer side: enqueues up to `count`; returns how many went in.
    @inlinable
    public func enqueue(_ burst: UnsafePointer<FrameDesc>, count: Int) -> Int {
        let t = tail.load(ordering: .relaxed) // only this thread stores it
        let n = min(Int(free(wanted: count, tail: t)), count)
        if n == 0 { return 0 }
        slots.write(burst, count: n, at: t)
        tail.store(t &+ UInt32(n), ordering: .releasing) // publishes the slots; pairs with the consumer's acquiring load
        return n
    }

    /// Producer side: enqueues all `count` or none (a multi-buffer packet's
    /// descriptors travel together, published by one store); returns whether they went.
    @inlinable
    public func enqueueAll(_ burst: UnsafePointer<FrameDesc>, count: Int) -> Bool {
        let t = tail.load(ordering: .relaxed) // only this thread stores it
        guard Int(free(wanted: count, tail: t)) >= count else { return false }
        slots.write(burst, count: count, at: t)
        tail.store(t &+ UInt32(count), ordering: .releasing) // publishes the slots; pairs with the consumer's acquiring load
        return true
    }

    /// Consumer side: dequeues up to `max`; returns how many.
    @inlinable
    public func dequeue(into out: UnsafeMutablePointer<FrameDesc>, max: Int) -> Int {
        let n = peek(into: out, max: max)
        if n > 0 { release(n) }
        return n
    }

    /// Consumer side: copies up to `max` entries into `out` without taking them:
    /// the next peek sees them again, until `release`.
    @inlinable
    public func peek(into out: UnsafeMutablePointer<FrameDesc>, max: Int) -> Int {
        let h = head.load(ordering: .relaxed) // only this thread stores it
        var avail = consumerCachedTail &- h
        if avail < UInt32(max) {
            consumerCachedTail = tail.load(ordering: .acquiring) // pairs with the producer's releasing store
            avail = consumerCachedTail &- h
        }
        let n = min(Int(avail), max)
        if n > 0 { slots.read(into: out, count: n, at: h) }
        return n
    }

    /// Consumer side: takes the first `count` entries peeked (at most what the
    /// last peek returned).
    @inlinable
    public func release(_ count: Int) {
        let h = head.load(ordering: .relaxed) // only this thread stores it
        head.store(h &+ UInt32(count), ordering: .releasing) // frees the slots; pairs with the producer's acquiring load
    }

    /// Approximate occupancy (for monitors).
    public var count: Int { Int(tail.load(ordering: .acquiring) &- head.load(ordering: .acquiring)) }
}

/// A bounded multi-producer/multi-consumer ring of frame descriptors, rte_ring
/// style: producers reserve a range by CAS on `producerHead`, write it, then
/// publish in order through `producerTail`; consumers likewise. Burst calls take
/// what fits and return counts; nothing blocks except the short wait for an
/// earlier producer (or consumer) to publish its own range.
public final class MPMCRing: @unchecked Sendable {
    @usableFromInline let slots: RingStorage
    public var capacity: Int { slots.capacity }
    /// Reservation index of producers: CAS among producers (acquiring-and-releasing).
    @usableFromInline let producerHead = Atomic<UInt32>(0)
    @usableFromInline let pad0 = CacheLinePad()
    /// Published index of producers: stored with release after a producer wrote
    /// its slots, in reservation order; loaded with acquire by consumers.
    @usableFromInline let producerTail = Atomic<UInt32>(0)
    @usableFromInline let pad1 = CacheLinePad()
    /// Reservation index of consumers: CAS among consumers.
    @usableFromInline let consumerHead = Atomic<UInt32>(0)
    @usableFromInline let pad2 = CacheLinePad()
    /// Released index of consumers: stored with release after a consumer read its
    /// slots, in reservation order; loaded with acquire by producers.
    @usableFromInline let consumerTail = Atomic<UInt32>(0)

    public init(capacity: Int) { slots = RingStorage(capacity: capacity) }

    deinit { slots.deallocate() }

    @inlinable
    public func enqueue(_ burst: UnsafePointer<FrameDesc>, count: Int) -> Int {
        var old = producerHead.load(ordering: .relaxed)
        var n = 0
        while true {
            // pairs with the consumers' releasing store of consumerTail: their reads are done
            let free = UInt32(slots.capacity) &- (old &- consumerTail.load(ordering: .acquiring))
            n = min(Int(free), count)
            if n == 0 { return 0 }
            let (won, seen) = producerHead.compareExchange(expected: old, desired: old &+ UInt32(n),
                                                           successOrdering: .acquiringAndReleasing, failureOrdering: .relaxed)
            if won { break }
            old = seen
        }
        slots.write(burst, count: n, at: old)
        // Publish in reservation order: wait for the producers before us. Acquiring,
        // so their slot writes happen before our releasing store below, and a
        // consumer that acquires our tail sees theirs too (found by ThreadSanitizer).
        while producerTail.load(ordering: .acquiring) != old {}
        producerTail.store(old &+ UInt32(n), ordering: .releasing) // pairs with consumers' acquiring load
        return n
    }

    @inlinable
    public func dequeue(into out: UnsafeMutablePointer<FrameDesc>, max: Int) -> Int {
        var old = consumerHead.load(ordering: .relaxed)
        var n = 0
        while true {
            // pairs with the producers' releasing store of producerTail: their writes are visible
            let avail = producerTail.load(ordering: .acquiring) &- old
            n = min(Int(avail), max)
            if n == 0 { return 0 }
            let (won, seen) = consumerHead.compareExchange(expected: old, desired: old &+ UInt32(n),
                                                           successOrdering: .acquiringAndReleasing, failureOrdering: .relaxed)
            if won { break }
            old = seen
        }
        slots.read(into: out, count: n, at: old)
        // Release in reservation order; acquiring for the same reason as enqueue's wait.
        while consumerTail.load(ordering: .acquiring) != old {}
        consumerTail.store(old &+ UInt32(n), ordering: .releasing) // pairs with producers' acquiring load
        return n
    }

    public var count: Int { Int(producerTail.load(ordering: .acquiring) &- consumerTail.load(ordering: .acquiring)) }
}

