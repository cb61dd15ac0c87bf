import CLanes
import Glibc
import LanesCore

/// The rings of one AF_XDP socket, as the lane loop sees them.
public struct LaneRings {
    public let rx: UnsafeMutablePointer<xsk_ring_cons>
    public let tx: UnsafeMutablePointer<xsk_ring_prod>
    public let fill: UnsafeMutablePointer<xsk_ring_prod>
    public let completion: UnsafeMutablePointer<xsk_ring_cons>
    public let fd: Int32
}

/// One lane: one RX/TX queue pair, served by one thread pinned to one core, run
/// to completion in bursts: drain completions, peek RX, hand the burst to the app,
/// submit TX, refill the fill ring, and kick the kernel only when need_wakeup asks.
/// Nothing on this path allocates, retains, locks, or makes a per-packet syscall.
public struct Lane<App: LaneApp>: ~Copyable {
    public let rings: LaneRings
    public var app: App
    public var pool: FramePool
    public let context: LaneContext
    public let batch: Int
    let burst: UnsafeMutablePointer<FrameDesc>
    let frameMask: UInt64
    /// TX descriptors submitted and not yet completed.
    var txOutstanding: Int = 0

    public init(rings: LaneRings, app: App, umem: UnsafeMutableRawPointer, frameSize: Int, frameCount: Int,
                batch: Int, counters: LaneCounters) {
        self.rings = rings
        self.app = app
        self.pool = FramePool(frameCount: frameCount, frameSize: frameSize)
        self.context = LaneContext(umem: umem, frameSize: frameSize, counters: counters)
        self.batch = batch
        self.burst = .allocate(capacity: batch)
        self.frameMask = ~UInt64(frameSize - 1)
        self.txOutstanding = 0
    }

    deinit { burst.deallocate() }

    /// Runs until `*stop` becomes non-zero.
    public mutating func run(stop: UnsafePointer<UInt64>) {
        let c = context.counters
        refill()
        var idle = 0
        while lanes_load_relaxed_u64(stop) == 0 {
            if step() == 0 {
                idle &+= 1
                if idle >= 256 {
                    // Idle: sleep in poll() until packets arrive (wakes the kernel too).
                    var pfd = pollfd(fd: rings.fd, events: Int16(POLLIN), revents: 0)
                    _ = poll(&pfd, 1, 1)
                    c.add(.idlePolls, 1)
                    idle = 0
                    publishGauges()
                }
            } else {
                idle = 0
            }
        }
        publishGauges()
    }

    /// One turn of the loop: completions, one RX burst through the app, TX,
    /// refill. Returns the number of descriptors it moved (0 = idle).
    @inline(__always)
    public mutating func step() -> Int {
        let done = drainCompletions()
        let got = receiveBurst()
        refill()
        return done &+ got
    }

    @inline(__always)
    mutating func drainCompletions() -> Int {
        guard txOutstanding > 0 else { return 0 }
        var idx: UInt32 = 0
        let n = Int(xsk_ring_cons__peek(rings.completion, UInt32(batch), &idx))
        if n > 0 {
            for i in 0..<n {
                pool.push(xsk_ring_cons__comp_addr(rings.completion, idx &+ UInt32(i)).pointee & frameMask)
            }
            xsk_ring_cons__release(rings.completion, UInt32(n))
            txOutstanding &-= n
        }
        // Copy mode sends only when kicked; ask again while TX is pending.
        if txOutstanding > 0 && xsk_ring_prod__needs_wakeup(rings.tx) != 0 {
            _ = lanes_kick_tx(rings.fd)
            context.counters.add(.txKicks, 1)
        }
        return n
    }

    @inline(__always)
    mutating func receiveBurst() -> Int {
        var idx: UInt32 = 0
        let n = Int(xsk_ring_cons__peek(rings.rx, UInt32(batch), &idx))
        guard n > 0 else { return 0 }
        var bytes: UInt64 = 0
        for i in 0..<n {
            let d = xsk_ring_cons__rx_desc(rings.rx, idx &+ UInt32(i)).pointee
            burst[i] = FrameDesc(addr: d.addr, len: d.len, options: d.options)
            bytes &+= UInt64(d.len)
        }
        xsk_ring_cons__release(rings.rx, UInt32(n))
        let c = context.counters
        c.add(.rxPackets, UInt64(n))
        c.add(.rxBytes, bytes)
        c.add(.bursts, 1)
        let k = app.process(burst, count: n, context: context)
        var sent = 0
        if k > 0 {
            sent = transmit(count: k)
        }
        // Drops (from the app, or TX ring full) go back to the free frames.
        if sent < n {
            for i in sent..<n { pool.push(burst[i].addr & frameMask) }
        }
        return n
    }

    /// Puts burst[0..<count] on the TX ring; returns how many went. The rest are
    /// counted as TX-ring-full drops and left for the caller to recycle.
    @inline(__always)
    mutating func transmit(count: Int) -> Int {
        var idx: UInt32 = 0
        let room = Int(xsk_prod_nb_free(rings.tx, UInt32(count)))
        let r = room > 0 ? Int(xsk_ring_prod__reserve(rings.tx, UInt32(min(count, room)), &idx)) : 0
        let c = context.counters
        if r > 0 {
            var bytes: UInt64 = 0
            for i in 0..<r {
                let d = burst[i]
                let slot = xsk_ring_prod__tx_desc(rings.tx, idx &+ UInt32(i))!
                slot.pointee.addr = d.addr
                slot.pointee.len = d.len
                slot.pointee.options = 0
                bytes &+= UInt64(d.len)
            }
            xsk_ring_prod__submit(rings.tx, UInt32(r))
            txOutstanding &+= r
            c.add(.txPackets, UInt64(r))
            c.add(.txBytes, bytes)
            if xsk_ring_prod__needs_wakeup(rings.tx) != 0 {
                _ = lanes_kick_tx(rings.fd)
                c.add(.txKicks, 1)
            }
        }
        if r < count { c.add(.dropTxRingFull, UInt64(count - r)) }
        return r
    }

    /// Moves free frames to the fill ring, keeping some back for TX.
    @inline(__always)
    mutating func refill() {
        let want = pool.count - pool.capacity / 4
        guard want >= batch || (want > 0 && pool.count == pool.capacity) else { return }
        // reserve is all-or-nothing: ask only for the room there is.
        let room = Int(xsk_prod_nb_free(rings.fill, UInt32(want)))
        guard room > 0 else { return }
        var idx: UInt32 = 0
        let r = Int(xsk_ring_prod__reserve(rings.fill, UInt32(min(want, room)), &idx))
        guard r > 0 else { return }
        for i in 0..<r {
            xsk_ring_prod__fill_addr(rings.fill, idx &+ UInt32(i)).pointee = pool.pop()
        }
        xsk_ring_prod__submit(rings.fill, UInt32(r))
        if xsk_ring_prod__needs_wakeup(rings.fill) != 0 {
            _ = lanes_kick_rx(rings.fd)
            context.counters.add(.rxWakeups, 1)
        }
    }

    func publishGauges() {
        context.counters.set(.freeFrames, UInt64(pool.count))
        context.counters.set(.fillFrames, UInt64(lanes_prod_occupancy(rings.fill)))
    }

    /// After the loop stopped: waits (up to `timeoutMs`) for TX in flight to
    /// complete, then says where every frame is.
    public mutating func drainAndAccount(timeoutMs: Int = 500) -> FrameLedger {
        var waited = 0
        while txOutstanding > 0 && waited < timeoutMs {
            if drainCompletions() == 0 {
                _ = lanes_kick_tx(rings.fd)
                usleep(1000)
                waited += 1
            }
        }
        publishGauges()
        return FrameLedger(total: pool.capacity, free: pool.count,
                           fillRing: Int(lanes_prod_occupancy(rings.fill)),
                           rxRing: Int(lanes_cons_occupancy(rings.rx)),
                           inHands: 0,
                           txRing: Int(lanes_prod_occupancy(rings.tx)),
                           completionRing: Int(lanes_cons_occupancy(rings.completion)))
    }
}
