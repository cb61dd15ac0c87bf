import Glibc
import LanesCore
import LanesXDP

/// Where a lane's packets come from and where its free frames go back: the
/// receive half of a lane (the transmit half is `Transmitter`). An AF_XDP
/// socket's RX and fill rings (`XSKInput`), or, for a pipeline's worker lane,
/// the ring from the RX lane and the ring back to it (`WorkerInput`). The lane
/// loop is one loop over either; it is specialised for each (no existentials).
public protocol LaneInput: ~Copyable {
    /// Copies up to `max` descriptors, in order, into `out` without taking them;
    /// adds their lengths to `bytes` where `countsReceived`.
    mutating func peek(into out: UnsafeMutablePointer<FrameDesc>, max: Int, bytes: inout UInt64) -> Int
    /// Takes the first `count` of the `peeked` of the last peek; the rest come
    /// again with the next peek (a multi-buffer packet not all written yet).
    mutating func release(_ count: Int, ofPeeked peeked: Int)
    /// Hands free frames from the pool back to where received frames come from.
    mutating func refill(_ pool: inout FramePool, batch: Int, counters: LaneCounters)
    /// Idle: waits a little for input (counted as an idle poll).
    func idle(counters: LaneCounters)
    /// Frames the input holds now (any thread): on the fill ring, on the RX ring.
    var occupancy: (fill: Int, rx: Int) { get }
    /// Frames the kernel took from the fill ring and has not yet put on RX: in a
    /// zero-copy driver's RX ring (or its pool), posted for packets to come. 0
    /// where nothing holds frames that way.
    var heldByKernel: Int { get }
    /// Wakes the kernel's receive side where it asks (a zero-copy driver refills
    /// its RX ring from the fill ring only when woken): for lanes that never sleep.
    func wakeIfAsked(counters: LaneCounters)
    /// Whether a packet taken here counts as received by this lane (a worker's
    /// were counted by the RX lane that received them).
    static var countsReceived: Bool { get }
    /// A worker: at stop 1 the lane ends once its input is empty and its TX done
    /// (other lanes run until stop 2).
    static var endsWhenDrained: Bool { get }
    /// Nothing waiting (read by `endsWhenDrained` lanes).
    var isEmpty: Bool { get }
    /// `--latency --busy-poll`: one non-blocking busy poll of the device queue.
    func busyPoll()
}

/// An AF_XDP socket's receive half: RX ring, fill ring, and the socket to wake.
public struct XSKInput: LaneInput, ~Copyable {
    public let rx: ConsumerRing<FrameDesc>
    public let fill: ProducerRing<UInt64>
    public let socket: XSKHandle
    /// The fewest frames handed to the fill ring at a time (an eighth of the
    /// ring, or all the lane wants if less). See `refill`.
    @usableFromInline let refillChunk: Int
    /// The last peek was not all released: the kernel may have written more
    /// since (the rest of a multi-buffer packet); reload its producer index.
    @usableFromInline var partial = false

    public init(rx: consuming ConsumerRing<FrameDesc>, fill: consuming ProducerRing<UInt64>, socket: XSKHandle) {
        refillChunk = max(fill.size / 8, 1)
        self.rx = rx; self.fill = fill; self.socket = socket
    }

    @inlinable @inline(__always)
    public mutating func peek(into out: UnsafeMutablePointer<FrameDesc>, max: Int, bytes: inout UInt64) -> Int {
        if partial { rx.refresh(); partial = false }
        var idx: UInt32 = 0
        let n = Int(rx.peek(UInt32(max), &idx))
        // FrameDesc has xdp_desc's layout: copy the descriptors as they are.
        let descs = rx.slots(from: idx)
        var b: UInt64 = 0
        for i in 0..<n {
            let d = descs[i]
            out[i] = d
            b &+= UInt64(d.len)
        }
        bytes &+= b
        return n
    }

    @inlinable @inline(__always)
    public mutating func release(_ count: Int, ofPeeked peeked: Int) {
        if count < peeked { rx.cancel(UInt32(peeked &- count)); partial = true }
        if count > 0 { rx.release(UInt32(count)) }
    }

    /// Moves free frames to the fill ring, keeping some back for TX, once there
    /// is room for a chunk (`refillChunk`, an eighth of the ring, or all the lane wants
    /// if less). The kernel reloads the fill producer whenever the entries it
    /// has seen run out: topped up a few frames per turn, that was a cache miss
    /// every few packets on the CPU that receives (on veth, the sender's); in
    /// chunks it is one per chunk. `lanes drop` on veth: 1.10x the rate of
    /// per-turn top-ups, median of 8 paired rounds (BENCHMARKS.md, 2026-11-30).
    @inlinable @inline(__always)
    public mutating func refill(_ pool: inout FramePool, batch: Int, counters: LaneCounters) {
        let want = pool.count - pool.capacity / 4 // a quarter kept back for TX
        guard want >= batch || (want > 0 && pool.count == pool.capacity) else { return }
        // reserve is all-or-nothing: ask only for the room there is.
        let chunk = min(refillChunk, want)
        let room = Int(fill.free(UInt32(chunk)))
        guard room >= chunk else { return }
        var idx: UInt32 = 0
        let r = Int(fill.reserve(UInt32(min(want, room)), &idx))
        guard r > 0 else { return }
        let slots = fill.slots(from: idx)
        pool.pop(count: r) { i, addr in slots[i] = addr }
        fill.submit(UInt32(r))
        if fill.needsWakeup {
            socket.kickRX()
            counters.add(.rxWakeups, 1)
        }
    }

    @inlinable
    public func wakeIfAsked(counters: LaneCounters) {
        if fill.needsWakeup {
            socket.kickRX()
            counters.add(.rxWakeups, 1)
        }
    }

    /// Sleeps in poll() until packets arrive (wakes the kernel too), at most 1 ms.
    @inlinable
    public func idle(counters: LaneCounters) {
        XSKHandle.waitReadable(socket, timeoutMs: 1)
        counters.add(.idlePolls, 1)
    }

    @inlinable public var occupancy: (fill: Int, rx: Int) { (fill.occupancy, rx.occupancy) }
    /// The fill ring's consumer less the RX ring's producer (both the kernel's
    /// free-running indices, acquire loads; the fill's first: a frame on its way
    /// from one to the other is counted once at most). In copy mode the kernel
    /// takes a fill entry only with a packet for it, so this is 0 at rest.
    @inlinable public var heldByKernel: Int { max(0, Int(Int32(bitPattern: fill.consumedByKernel &- rx.producedByKernel))) }
    @inlinable public static var countsReceived: Bool { true }
    @inlinable public static var endsWhenDrained: Bool { false }
    @inlinable public var isEmpty: Bool { rx.occupancy == 0 }
    @inlinable @inline(__always) public func busyPoll() { socket.busyPoll() }
}

/// A pipeline worker lane's receive half: descriptors from the RX lane's
/// fan-out ring (single producer: the RX lane; single consumer: this lane), and
/// every frame the worker is done with (sent, dropped) back through its return
/// ring, which holds every frame of the UMEM, so it is never full.
public struct WorkerInput: LaneInput {
    public let input: SPSCRing
    public let returns: SPSCRing
    @usableFromInline let stageMemory = OwnedBuffer(count: 64, initial: FrameDesc(addr: 0, len: 0))
    @usableFromInline let stage: UnsafeMutablePointer<FrameDesc>

    public init(input: SPSCRing, returns: SPSCRing) {
        self.input = input; self.returns = returns
        stage = stageMemory.pointer
    }

    @inlinable @inline(__always)
    public mutating func peek(into out: UnsafeMutablePointer<FrameDesc>, max: Int, bytes: inout UInt64) -> Int { input.peek(into: out, max: max) }

    @inlinable @inline(__always)
    public mutating func release(_ count: Int, ofPeeked peeked: Int) { if count > 0 { input.release(count) } }

    /// Every free frame goes home at once (the RX lane owns them all).
    @inlinable @inline(__always)
    public mutating func refill(_ pool: inout FramePool, batch: Int, counters: LaneCounters) {
        let stage = self.stage
        while !pool.isEmpty {
            let n = min(pool.count, 64)
            pool.pop(count: n) { i, addr in stage[i] = FrameDesc(addr: addr, len: 0) }
            _ = returns.enqueue(stage, count: n) // sized for every frame: never full
        }
    }

    @inlinable
    public func idle(counters: LaneCounters) {
        usleep(20)
        counters.add(.idlePolls, 1)
    }

    @inlinable public var occupancy: (fill: Int, rx: Int) { (0, input.count) }
    @inlinable public var heldByKernel: Int { 0 }
    @inlinable public func wakeIfAsked(counters: LaneCounters) {}
    @inlinable public static var countsReceived: Bool { false }
    @inlinable public static var endsWhenDrained: Bool { true }
    @inlinable public var isEmpty: Bool { input.count == 0 }
    @inlinable public func busyPoll() {}
}
