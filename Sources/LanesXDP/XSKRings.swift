import CLanes
import Glibc
import LanesCore

// The four AF_XDP rings as typed, non-copyable Swift views, with the verbs the
// lane loop needs (libxdp xsk.h's reserve/submit, peek/release/cancel,
// needs_wakeup, and the kicks). Only their owner makes them, once: a socket hands
// its RX half (RX, fill) to the one lane that receives on it and its TX half (TX,
// completion) to the one that transmits on it (`XSKSocket.takeRXHalf`,
// `takeTXHalf`; a second take stops the process), and `MemoryRings` its four to
// the in-memory port's lane. Anyone else (the monitor's frame count) reads
// occupancy through the owner (`XSKSocket.occupancy`), never through a view. The views hold a pointer
// to libxdp's ring struct (cached indices, mask, and pointers into the shared
// mmap); the socket or `MemoryRings` that made a view owns that struct and must
// outlive it. The verbs are libxdp's static inline helpers, inlined into the
// lane loop: the producer/consumer index orderings are theirs (the kernel's
// side of each pair is the same acquire/release, in xsk_queue.h).

/// The slots of one AF_XDP ring from index `first` on, typed, with the ring's
/// base and mask read once per burst. libxdp's per-slot helpers
/// (xsk_ring_cons__rx_desc and friends) reload both through the ring struct on
/// every call, and return an optional pointer Swift unwraps each time: the
/// compiler cannot prove a burst's stores do not alias the ring struct.
@frozen public struct RingSlots<Slot> {
    @usableFromInline let base: UnsafeMutablePointer<Slot>
    @usableFromInline let mask: UInt32
    @usableFromInline let first: UInt32

    @inlinable @inline(__always)
    init(ring: UnsafeMutableRawPointer?, mask: UInt32, first: UInt32) {
        base = ring.unsafelyUnwrapped.assumingMemoryBound(to: Slot.self)
        self.mask = mask
        self.first = first
    }

    /// Slot `first + i` (indices are free-running; `i` is within the burst).
    @inlinable
    public subscript(i: Int) -> Slot {
        @inline(__always) get { base[Int((first &+ UInt32(truncatingIfNeeded: i)) & mask)] }
        @inline(__always) nonmutating set { base[Int((first &+ UInt32(truncatingIfNeeded: i)) & mask)] = newValue }
    }
}

/// A ring user space produces into and the kernel consumes: the fill ring
/// (`Slot` = UInt64 frame addresses) or a TX ring (`Slot` = FrameDesc).
/// Single producer: the one lane that holds the view.
@frozen public struct ProducerRing<Slot>: ~Copyable {
    @usableFromInline let ring: UnsafeMutablePointer<xsk_ring_prod>

    @inlinable init(_ ring: UnsafeMutablePointer<xsk_ring_prod>) { self.ring = ring }

    /// Slots in the ring.
    @inlinable public var size: Int { Int(ring.pointee.size) }

    /// Free slots, looking at the kernel's consumer index only when fewer than
    /// `wanted` are known free (acquire load: pairs with the kernel's release of
    /// the consumer after it read the slots).
    @inlinable @inline(__always)
    public func free(_ wanted: UInt32) -> UInt32 { xsk_prod_nb_free(ring, wanted) }

    /// Reserves `count` slots, all or none; returns how many (0 or `count`) and
    /// the first index in `index`.
    @inlinable @inline(__always)
    public func reserve(_ count: UInt32, _ index: inout UInt32) -> UInt32 { xsk_ring_prod__reserve(ring, count, &index) }

    /// The reserved slots from `index` on.
    @inlinable @inline(__always)
    public func slots(from index: UInt32) -> RingSlots<Slot> {
        RingSlots(ring: ring.pointee.ring, mask: ring.pointee.mask, first: index)
    }

    /// Publishes `count` reserved slots to the kernel (release store of the
    /// producer index: pairs with the kernel's acquire before it reads the slots).
    @inlinable @inline(__always)
    public func submit(_ count: UInt32) { xsk_ring_prod__submit(ring, count) }

    /// The kernel asks to be woken (XDP_RING_NEED_WAKEUP in the ring's flags).
    @inlinable @inline(__always)
    public var needsWakeup: Bool { xsk_ring_prod__needs_wakeup(ring) != 0 }

    /// Entries submitted and not yet consumed by the kernel, from any thread
    /// (acquire loads of both indices; the producer's pairs with `submit`).
    @inlinable public var occupancy: Int { Int(lanes_prod_occupancy(ring)) }

    /// The kernel's consumer index: entries it has taken, free-running (acquire:
    /// pairs with the kernel's release after it read them).
    @inlinable public var consumedByKernel: UInt32 { lanes_load_acquire_u32(ring.pointee.consumer) }

    /// Puts the frames `frames` (indices into the UMEM) on a fill ring, as many
    /// as fit; returns how many went.
    public func prime(frames: Range<Int>, frameSize: Int) -> Int where Slot == UInt64 {
        // reserve is all-or-nothing: ask only for the room there is.
        var idx: UInt32 = 0
        let n = Int(reserve(min(UInt32(frames.count), free(UInt32(frames.count))), &idx))
        let s = slots(from: idx)
        for i in 0..<n { s[i] = UInt64((frames.lowerBound + i) * frameSize) }
        submit(UInt32(n))
        return n
    }
}

/// A ring the kernel produces into and user space consumes: an RX ring (`Slot` =
/// FrameDesc) or the completion ring (`Slot` = UInt64). Single consumer.
@frozen public struct ConsumerRing<Slot>: ~Copyable {
    @usableFromInline let ring: UnsafeMutablePointer<xsk_ring_cons>

    @inlinable init(_ ring: UnsafeMutablePointer<xsk_ring_cons>) { self.ring = ring }

    @inlinable public var size: Int { Int(ring.pointee.size) }

    /// Up to `count` entries ready to read; the first index in `index`. Loads the
    /// kernel's producer index (acquire: pairs with its release after writing the
    /// slots) only when the cached entries run out.
    @inlinable @inline(__always)
    public func peek(_ count: UInt32, _ index: inout UInt32) -> UInt32 { xsk_ring_cons__peek(ring, count, &index) }

    /// The peeked slots from `index` on.
    @inlinable @inline(__always)
    public func slots(from index: UInt32) -> RingSlots<Slot> {
        RingSlots(ring: ring.pointee.ring, mask: ring.pointee.mask, first: index)
    }

    /// Hands `count` read entries back to the kernel (release store of the
    /// consumer index, after the reads: pairs with the kernel's acquire).
    @inlinable @inline(__always)
    public func release(_ count: UInt32) { xsk_ring_cons__release(ring, count) }

    /// Un-peeks the last `count` peeked entries: they come again with the next peek.
    @inlinable @inline(__always)
    public func cancel(_ count: UInt32) { xsk_ring_cons__cancel(ring, count) }

    /// Reloads the cached producer index: peek reloads it only when the cached
    /// entries run out, and a lane that left a packet's first buffers on the
    /// ring (cancel) needs the kernel's newer ones. Acquire, as peek's own load.
    @inlinable @inline(__always)
    public func refresh() { lanes_cons_refresh(ring) }

    /// Entries produced and not yet released, from any thread (acquire loads).
    @inlinable public var occupancy: Int { Int(lanes_cons_occupancy(ring)) }

    /// The kernel's producer index: entries it has written, free-running (acquire:
    /// pairs with its release after writing them).
    @inlinable public var producedByKernel: UInt32 { lanes_load_acquire_u32(ring.pointee.producer) }
}

/// An AF_XDP socket's descriptor as the lane uses it: kicks and waits. Not an
/// owner (the XSKSocket closes it); -1 for the in-memory port, where every call
/// fails at once and harmlessly.
@frozen public struct XSKHandle: RawRepresentable, Sendable {
    public let rawValue: Int32
    @inlinable public init(rawValue: Int32) { self.rawValue = rawValue }

    /// Wakes the kernel to process the TX ring (sendto with MSG_DONTWAIT).
    @inlinable @inline(__always) @discardableResult
    public func kickTX() -> Int32 { lanes_kick_tx(rawValue) }

    /// Wakes the kernel to refill RX from the fill ring (recvfrom with MSG_DONTWAIT).
    @inlinable @inline(__always) @discardableResult
    public func kickRX() -> Int32 { lanes_kick_rx(rawValue) }

    /// One non-blocking busy-poll of the socket's device queue (SO_PREFER_BUSY_POLL).
    @inlinable @inline(__always)
    public func busyPoll() { _ = recv(rawValue, nil, 0, Int32(MSG_DONTWAIT)) }

    /// Sleeps in poll(2) until the socket has RX entries or `timeoutMs` pass.
    @inlinable
    public static func waitReadable(_ a: XSKHandle, _ b: XSKHandle? = nil, timeoutMs: Int32) {
        var pfds = (pollfd(fd: a.rawValue, events: Int16(POLLIN), revents: 0),
                    pollfd(fd: b?.rawValue ?? -1, events: Int16(POLLIN), revents: 0))
        withUnsafeMutablePointer(to: &pfds) { $0.withMemoryRebound(to: pollfd.self, capacity: 2) { _ = poll($0, b == nil ? 1 : 2, timeoutMs) } }
    }
}

/// The TX half of a socket: its TX ring, the completion ring it completes into
/// (its own, or the UMEM's for the UMEM's first socket) and the socket to kick.
@frozen public struct TXRings: ~Copyable {
    public let tx: ProducerRing<FrameDesc>
    public let completion: ConsumerRing<UInt64>
    public let socket: XSKHandle

    /// The TX half of `s`, taken from it (once).
    public init(_ s: XSKSocket) { self = s.takeTXHalf() }

    init(tx: consuming ProducerRing<FrameDesc>, completion: consuming ConsumerRing<UInt64>, socket: XSKHandle) {
        self.tx = tx; self.completion = completion; self.socket = socket
    }
}

/// The rings a lane works: RX and fill of the socket it receives on, TX and
/// completion of the socket it transmits on (the same socket for drop, macswap
/// and gen; the out port's socket, sharing the UMEM, for two-port forwarding).
@frozen public struct LaneRings: ~Copyable {
    public let rx: ConsumerRing<FrameDesc>
    public let fill: ProducerRing<UInt64>
    /// Socket woken for RX (fill ring, poll).
    public let rxSocket: XSKHandle
    public let out: TXRings

    /// Receives on `receiving`, transmits on `transmitting` (the same socket, or one sharing its UMEM).
    /// Takes the halves from their sockets (once each).
    public init(receiving: XSKSocket, transmitting: XSKSocket) {
        let half = receiving.takeRXHalf()
        rx = ConsumerRing(half.rx); fill = ProducerRing(half.fill); rxSocket = receiving.xskHandle
        out = transmitting.takeTXHalf()
    }

    init(_ memory: MemoryRings) {
        rx = ConsumerRing(memory.rx); fill = ProducerRing(memory.fill); rxSocket = XSKHandle(rawValue: -1)
        out = TXRings(tx: ProducerRing(memory.tx), completion: ConsumerRing(memory.completion), socket: XSKHandle(rawValue: -1))
    }
}

/// Four AF_XDP rings in plain memory, laid out as the kernel's (producer,
/// consumer and flags words, then the slots), for the in-memory port of tests
/// and benchmarks: the lane works them through the same views a socket gives
/// (`laneRings`); the fake kernel side reads and writes the words and slots here.
public final class MemoryRings {
    public let size: UInt32
    /// Producer, consumer, flags of each ring: 0-2 RX, 3-5 TX, 6-8 fill, 9-11 completion.
    public let words: UnsafeMutablePointer<UInt32>
    public let rxDescs, txDescs: UnsafeMutablePointer<FrameDesc>
    public let fillAddrs, compAddrs: UnsafeMutablePointer<UInt64>
    let rx = UnsafeMutablePointer<xsk_ring_cons>.allocate(capacity: 1)
    let tx = UnsafeMutablePointer<xsk_ring_prod>.allocate(capacity: 1)
    let fill = UnsafeMutablePointer<xsk_ring_prod>.allocate(capacity: 1)
    let completion = UnsafeMutablePointer<xsk_ring_cons>.allocate(capacity: 1)

    public init(size ringSize: Int) {
        precondition(ringSize > 0 && ringSize & (ringSize - 1) == 0)
        size = UInt32(ringSize)
        words = .allocate(capacity: 16)
        words.initialize(repeating: 0, count: 16)
        rxDescs = .allocate(capacity: ringSize)
        txDescs = .allocate(capacity: ringSize)
        fillAddrs = .allocate(capacity: ringSize)
        compAddrs = .allocate(capacity: ringSize)
        let mask = size - 1, words = self.words, size = self.size
        func cons(_ base: Int, _ ring: UnsafeMutableRawPointer) -> xsk_ring_cons {
            var r = xsk_ring_cons()
            r.cached_prod = 0; r.cached_cons = 0; r.mask = mask; r.size = size
            r.producer = words + base; r.consumer = words + base + 1; r.flags = words + base + 2; r.ring = ring
            return r
        }
        func prod(_ base: Int, _ ring: UnsafeMutableRawPointer) -> xsk_ring_prod {
            var r = xsk_ring_prod()
            r.cached_prod = 0; r.cached_cons = size; r.mask = mask; r.size = size
            r.producer = words + base; r.consumer = words + base + 1; r.flags = words + base + 2; r.ring = ring
            return r
        }
        rx.initialize(to: cons(0, UnsafeMutableRawPointer(rxDescs)))
        tx.initialize(to: prod(3, UnsafeMutableRawPointer(txDescs)))
        fill.initialize(to: prod(6, UnsafeMutableRawPointer(fillAddrs)))
        completion.initialize(to: cons(9, UnsafeMutableRawPointer(compAddrs)))
    }

    deinit {
        words.deallocate(); rxDescs.deallocate(); txDescs.deallocate(); fillAddrs.deallocate(); compAddrs.deallocate()
        rx.deallocate(); tx.deallocate(); fill.deallocate(); completion.deallocate()
    }

    /// Whether the lane's views were handed out (`takeLaneRings`, once).
    var taken = false

    /// The views for the one lane that works these rings (the in-memory port has
    /// no socket: kicks do nothing). A second take stops the process.
    public func takeLaneRings() -> LaneRings {
        precondition(!taken, "the in-memory rings' views were taken already: one lane works them")
        taken = true
        return LaneRings(self)
    }

    /// Puts frames on the fill ring before the lane takes the views (set-up, as
    /// `XSKSocket.primeFill`); returns how many went.
    public func primeFill(frames: Range<Int>, frameSize: Int) -> Int {
        precondition(!taken, "prime the fill ring before the lane takes it")
        return ProducerRing<UInt64>(fill).prime(frames: frames, frameSize: frameSize)
    }
}

/// What the four rings of a lane hold, as the kernel sees them.
public struct RingOccupancy: Sendable, Equatable {
    public var fill: Int, rx: Int, tx: Int, completion: Int

    /// Read downstream first (completion, TX, RX, fill): the kernel moves frames
    /// downstream, so one moving meanwhile is missed, never counted twice. Acquire
    /// loads of both indices of each ring (lanes_*_occupancy; the producer's pairs
    /// with its submit or the kernel's release).
    static func read(fill: UnsafeMutablePointer<xsk_ring_prod>, rx: UnsafeMutablePointer<xsk_ring_cons>,
                     tx: UnsafeMutablePointer<xsk_ring_prod>, completion: UnsafeMutablePointer<xsk_ring_cons>) -> RingOccupancy {
        let c = Int(lanes_cons_occupancy(completion)), t = Int(lanes_prod_occupancy(tx))
        let r = Int(lanes_cons_occupancy(rx)), f = Int(lanes_prod_occupancy(fill))
        return RingOccupancy(fill: f, rx: r, tx: t, completion: c)
    }
}

extension FrameDesc {
    /// XDP_PKT_CONTD (linux/if_xdp.h, kernel 6.6): in a descriptor's options, on
    /// every buffer of a multi-buffer packet but its last.
    @inlinable public static var continues: UInt32 { @inline(__always) get { lanes_xdp_pkt_contd() } }
}
