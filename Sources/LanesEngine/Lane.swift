import CLanes
import Glibc
import LanesCore

/// The rings a lane works: RX and fill of the socket it receives on, TX and
/// completion of the socket it transmits on (the same socket for drop, macswap
/// and gen; the out port's socket, sharing the UMEM, for two-port forwarding).
public struct LaneRings {
    public let rx: UnsafeMutablePointer<xsk_ring_cons>
    public let tx: UnsafeMutablePointer<xsk_ring_prod>
    public let fill: UnsafeMutablePointer<xsk_ring_prod>
    public let completion: UnsafeMutablePointer<xsk_ring_cons>
    /// Socket woken for RX (fill ring, poll).
    public let rxFD: Int32
    /// Socket kicked for TX.
    public let txFD: Int32

    public init(rx: UnsafeMutablePointer<xsk_ring_cons>, tx: UnsafeMutablePointer<xsk_ring_prod>,
                fill: UnsafeMutablePointer<xsk_ring_prod>, completion: UnsafeMutablePointer<xsk_ring_cons>, rxFD: Int32, txFD: Int32) {
        self.rx = rx; self.tx = tx; self.fill = fill; self.completion = completion; self.rxFD = rxFD; self.txFD = txFD
    }
}

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

extension UnsafeMutablePointer where Pointee == xsk_ring_cons {
    /// The ring's slots from `idx` (as returned by peek) on, as `Slot`s.
    @inlinable @inline(__always)
    public func slots<Slot>(from idx: UInt32, as: Slot.Type) -> RingSlots<Slot> {
        RingSlots(ring: pointee.ring, mask: pointee.mask, first: idx)
    }
}

extension UnsafeMutablePointer where Pointee == xsk_ring_prod {
    /// The ring's slots from `idx` (as returned by reserve) on, as `Slot`s.
    @inlinable @inline(__always)
    public func slots<Slot>(from idx: UInt32, as: Slot.Type) -> RingSlots<Slot> {
        RingSlots(ring: pointee.ring, mask: pointee.mask, first: idx)
    }
}

/// One lane: one RX/TX queue pair, served by one thread pinned to one core, run
/// to completion in bursts: drain completions, peek RX, hand the burst to the app,
/// submit TX, refill the fill ring, and kick the kernel only when need_wakeup asks.
/// Nothing on this path allocates, retains, locks, or makes a per-packet syscall.
public struct Lane<App: LaneApp>: ~Copyable {
    public let rings: LaneRings
    public var app: App
    /// Frames for the fill ring and received packets.
    public var pool: FramePool
    /// A generator's own frames (frames from `generatorBoundary` on), taken newest
    /// first: they are interchangeable, and the newest are still in cache.
    public var generatorPool: FramePool
    @usableFromInline let generatorBoundary: UInt64
    @usableFromInline let generating: Bool
    public let context: LaneContext
    public let batch: Int
    @usableFromInline let burst: UnsafeMutablePointer<FrameDesc>
    @usableFromInline let genBurst: UnsafeMutablePointer<FrameDesc>
    @usableFromInline let frameMask: UInt64
    /// The fewest frames handed to the fill ring at a time (an eighth of the
    /// ring, or all the lane wants if less). See `refill`.
    @usableFromInline let refillChunk: Int
    /// TX descriptors submitted and not yet completed.
    @usableFromInline var txOutstanding: Int = 0
    /// This lane's turn count (odd mid-turn), mirrored in `.turn` for the monitor.
    @usableFromInline var turn: UInt64 = 0
    @usableFromInline var finishedReported = false
    /// Set by the engine's drain phase: generate nothing more.
    public var draining = false
    /// AF_XDP multi-buffer (sockets bound with XDP_USE_SG): a packet is the chain
    /// of its descriptors, XDP_PKT_CONTD on all but the last. Apps see one
    /// descriptor per packet (see `LaneContext.chain`).
    public let multiBuffer: Bool
    /// Multi-buffer: the burst's descriptors in ring order (`chainCapacity` of them).
    @usableFromInline let chain: UnsafeMutablePointer<FrameDesc>
    /// Descriptors one multi-buffer RX burst peeks at most (and packets a burst holds).
    @usableFromInline let chainCapacity: Int
    /// The most buffers the kernel takes in one TX packet.
    @usableFromInline let maxSegments: Int
    /// Frames per generator packet: a multi-buffer generator's packet lies in this
    /// many consecutive frames, written as one run of bytes and sent as one
    /// descriptor per frame. 1 otherwise.
    @usableFromInline let unitFrames: Int
    @usableFromInline let umemBytes: UInt64
    /// Multi-buffer RX: the packet at the head of the RX ring is longer than a
    /// burst; its descriptors are recycled up to its last one.
    @usableFromInline var discarding = false
    /// Multi-buffer RX: the last peek ended inside a packet (left on the ring).
    @usableFromInline var waitingForRest = false
    /// `--latency`: the lane spins instead of sleeping and kicks TX after every
    /// burst it submits, not only when the kernel asks (one core at 100% per lane).
    public var latency = false
    /// With `latency`: the socket has SO_PREFER_BUSY_POLL; idle turns busy-poll it.
    public var busyPoll = false

    /// The lane owns frames `firstFrame ..< firstFrame + frameCount` of the UMEM:
    /// the first ones receive (fill ring, RX), a generator's own are the last.
    /// `primed`: frames `firstFrame ..< firstFrame + primed` are on the fill ring
    /// already (set-up put them there before attaching the XDP program).
    public init(rings: LaneRings, app: App, umem: UnsafeMutableRawPointer, frameSize: Int, frameCount: Int,
                firstFrame: Int = 0, primed: Int = 0, batch: Int, counters: LaneCounters,
                multiBuffer: Bool = false, maxSegments: Int = 18, umemBytes: Int? = nil) {
        self.rings = rings
        let unit = multiBuffer ? max(1, (app.largestPacket + frameSize - 1) / frameSize) : 1
        precondition(unit <= maxSegments, "a generator packet of \(app.largestPacket) bytes needs \(unit) buffers")
        precondition(multiBuffer || app.largestPacket <= frameSize, "a \(app.largestPacket)-byte packet needs multi-buffer")
        // A multi-buffer generator's packets take `unit` frames each.
        let g = min(max(app.generatorFrames(of: frameCount), 0), frameCount) / unit * unit
        precondition(primed <= frameCount - g, "\(primed) frames primed, but the lane receives into \(frameCount - g)")
        self.app = app
        self.pool = FramePool(frameCount: frameCount - g, frameSize: frameSize, first: firstFrame)
        self.generatorBoundary = UInt64((firstFrame + frameCount - g) * frameSize)
        self.generatorPool = FramePool(count: g / unit, base: generatorBoundary, stride: unit * frameSize)
        // The pool hands out frames oldest first: the primed ones are the first it would.
        self.pool.pop(count: primed) { _, _ in }
        self.generating = g > 0
        self.multiBuffer = multiBuffer
        self.unitFrames = unit
        self.maxSegments = maxSegments
        self.umemBytes = UInt64(umemBytes ?? (firstFrame + frameCount) * frameSize)
        self.chainCapacity = multiBuffer ? max(batch, 64) : batch
        self.chain = .allocate(capacity: chainCapacity)
        self.context = LaneContext(umem: umem, frameSize: frameSize, counters: counters, chain: multiBuffer ? chain : nil)
        self.batch = batch
        self.burst = .allocate(capacity: chainCapacity)
        self.genBurst = .allocate(capacity: batch)
        self.frameMask = ~UInt64(frameSize - 1)
        self.refillChunk = max(Int(rings.fill.pointee.size) / 8, 1)
        self.txOutstanding = 0
        if g > 0 { self.app.prepare(generatorFrames: (firstFrame + frameCount - g)..<(firstFrame + frameCount), context: context) }
    }

    deinit {
        burst.deallocate()
        genBurst.deallocate()
        chain.deallocate()
    }

    /// Every frame the lane owns now (both pools).
    public var freeFrames: Int { pool.count + generatorPool.count * unitFrames }
    public var totalFrames: Int { pool.capacity + generatorPool.capacity * unitFrames }

    /// Runs until `*stop` reaches 2. At 1 the lane drains: a generator stops
    /// sending while the lane still receives and completes what is in flight.
    @inlinable
    public mutating func run(stop: UnsafePointer<UInt64>) {
        let c = context.counters
        refill()
        var idle = 0
        while true {
            let s = lanes_load_relaxed_u64(stop)
            if s >= 2 { break }
            if s == 1 && !draining { draining = true }
            if step() == 0 {
                idle &+= 1
                if latency {
                    // --latency: never sleep. With --busy-poll the socket's busy
                    // poll drives the device queue from here (a non-blocking recv).
                    if busyPoll { _ = recv(rings.rxFD, nil, 0, Int32(MSG_DONTWAIT)) }
                    if idle >= 4096 { publishGauges(); idle = 0 }
                } else if generating && !finishedReported {
                    // Waiting for the pacing clock: short sleeps keep the rate even.
                    if idle >= 64 { usleep(10); idle = 0 }
                } else if idle >= 256 {
                    // Idle: sleep in poll() until packets arrive (wakes the kernel too).
                    var pfd = pollfd(fd: rings.rxFD, events: Int16(POLLIN), revents: 0)
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

    /// Two lanes on one thread, one per direction of a two-port forwarder
    /// (`lanes fwd --bidirectional`): turns alternate, idle sleeps poll both sockets.
    @inlinable
    public static func runPair<Other: LaneApp>(_ a: inout Lane<App>, _ b: inout Lane<Other>, stop: UnsafePointer<UInt64>) {
        a.refill()
        b.refill()
        var idle = 0
        while lanes_load_relaxed_u64(stop) < 2 {
            if a.step() &+ b.step() == 0 {
                idle &+= 1
                if a.latency {
                    if idle >= 4096 { a.publishGauges(); b.publishGauges(); idle = 0 }
                } else if idle >= 256 {
                    var pfds = (pollfd(fd: a.rings.rxFD, events: Int16(POLLIN), revents: 0),
                                pollfd(fd: b.rings.rxFD, events: Int16(POLLIN), revents: 0))
                    withUnsafeMutablePointer(to: &pfds) { $0.withMemoryRebound(to: pollfd.self, capacity: 2) { _ = poll($0, 2, 1) } }
                    a.context.counters.add(.idlePolls, 1)
                    idle = 0
                    a.publishGauges()
                    b.publishGauges()
                }
            } else {
                idle = 0
            }
        }
        a.publishGauges()
        b.publishGauges()
    }

    /// One turn of the loop: completions, one RX burst through the app, TX,
    /// refill. Returns the number of descriptors it moved (0 = idle).
    @inlinable @inline(__always)
    public mutating func step() -> Int {
        context.counters.beginTurn(&turn)
        let done = drainCompletions()
        if App.handsOff { app.reclaim(into: &pool) }
        var made = 0
        if generating { made = generateBurst() }
        let got = receiveBurst()
        // A receiving app with a limit (capture --count): the lane reports it done.
        if !generating && !finishedReported && app.finished {
            finishedReported = true
            context.counters.set(.finished, 1)
        }
        refill()
        // For the monitor's per-interval frame accounting: one relaxed store, and
        // the turn's end (a release store) that makes it and the rings consistent.
        context.counters.set(.freeFrames, UInt64(pool.count &+ generatorPool.count))
        context.counters.endTurn(&turn)
        return done &+ got &+ made
    }

    /// A generator's turn: as many frames as the app's budget, the free
    /// generator frames and the TX ring allow; only changing fields are rewritten.
    @inlinable @inline(__always)
    mutating func generateBurst() -> Int {
        // A multi-buffer generator's packet takes `unit` frames and TX slots (1 otherwise).
        let unit = unitFrames
        var limit = min(batch, generatorPool.count, chainCapacity / unit)
        if limit > 0 { limit = min(limit, Int(xsk_prod_nb_free(rings.tx, UInt32(limit &* unit))) / unit) }
        let now = monotonicNanos()
        let n = limit > 0 && !draining ? app.budget(limit, now: now) : 0
        if n == 0 {
            if !finishedReported && (app.finished || draining) && txOutstanding == 0 {
                finishedReported = true
                context.counters.set(.finished, 1)
            }
            return 0
        }
        for i in 0..<n { genBurst[i] = FrameDesc(addr: generatorPool.popNewest(), len: 0) }
        app.generate(genBurst, count: n, now: now, context: context)
        if unit > 1 {
            transmitGenerated(n)
            return n
        }
        let sent = transmit(genBurst, count: n)
        if sent < n { for i in sent..<n { generatorPool.push(genBurst[i].addr & frameMask) } }
        return n
    }

    @inlinable @inline(__always)
    mutating func recycle(_ addr: UInt64) {
        let a = addr & frameMask
        if a >= generatorBoundary {
            // A multi-buffer generator packet comes home with its first frame; its
            // other frames complete with it (one skb in copy mode) and are skipped.
            if unitFrames == 1 || (a &- generatorBoundary) % UInt64(unitFrames &* context.frameSize) == 0 { generatorPool.push(a) }
        } else {
            pool.push(a)
        }
    }

    @inlinable @inline(__always)
    mutating func drainCompletions() -> Int {
        guard txOutstanding > 0 else { return 0 }
        var idx: UInt32 = 0
        let comp = rings.completion
        let n = Int(xsk_ring_cons__peek(comp, UInt32(batch), &idx))
        if n > 0 {
            let mask = frameMask
            let done = comp.slots(from: idx, as: UInt64.self)
            if generating {
                for i in 0..<n { recycle(done[i]) }
            } else {
                pool.push(count: n) { done[$0] & mask }
            }
            xsk_ring_cons__release(comp, UInt32(n))
            txOutstanding &-= n
        }
        // Copy mode sends only when kicked; ask again while TX is pending.
        if txOutstanding > 0 && xsk_ring_prod__needs_wakeup(rings.tx) != 0 {
            _ = lanes_kick_tx(rings.txFD)
            context.counters.add(.txKicks, 1)
        }
        return n
    }

    @inlinable @inline(__always)
    mutating func receiveBurst() -> Int {
        if multiBuffer { return receiveChains() }
        var idx: UInt32 = 0
        let rx = rings.rx, burst = self.burst
        let n = Int(xsk_ring_cons__peek(rx, UInt32(batch), &idx))
        guard n > 0 else { return 0 }
        var bytes: UInt64 = 0
        // FrameDesc has xdp_desc's layout: copy the descriptors as they are.
        let descs = rx.slots(from: idx, as: FrameDesc.self)
        for i in 0..<n {
            let d = descs[i]
            burst[i] = d
            bytes &+= UInt64(d.len)
        }
        xsk_ring_cons__release(rx, UInt32(n))
        let c = context.counters
        c.add(.rxPackets, UInt64(n))
        c.add(.rxBytes, bytes)
        c.add(.bursts, 1)
        let k = app.process(burst, count: n, context: context)
        if App.handsOff {
            if k > 0 {
                let mask = frameMask
                pool.push(count: k) { burst[$0].addr & mask }
            }
            return n
        }
        var sent = 0
        if k > 0 {
            sent = transmit(burst, count: k)
        }
        // Drops (from the app, or TX ring full) go back to the free frames:
        // received frames always came from `pool` (through the fill ring).
        if sent < n {
            let mask = frameMask
            pool.push(count: n - sent) { burst[sent + $0].addr & mask }
        }
        return n
    }

    /// Puts burst[0..<count] on the TX ring; returns how many went. The rest are
    /// counted as TX-ring-full drops and left for the caller to recycle.
    @inlinable @inline(__always)
    mutating func transmit(_ burst: UnsafeMutablePointer<FrameDesc>, count: Int) -> Int {
        var idx: UInt32 = 0
        let room = Int(xsk_prod_nb_free(rings.tx, UInt32(count)))
        let r = room > 0 ? Int(xsk_ring_prod__reserve(rings.tx, UInt32(min(count, room)), &idx)) : 0
        let c = context.counters
        if r > 0 {
            var bytes: UInt64 = 0
            let slots = rings.tx.slots(from: idx, as: FrameDesc.self)
            for i in 0..<r {
                let d = burst[i]
                slots[i] = FrameDesc(addr: d.addr, len: d.len, options: 0)
                bytes &+= UInt64(d.len)
            }
            xsk_ring_prod__submit(rings.tx, UInt32(r))
            txOutstanding &+= r
            c.add(.txPackets, UInt64(r))
            c.add(.txBytes, bytes)
            if latency || xsk_ring_prod__needs_wakeup(rings.tx) != 0 {
                _ = lanes_kick_tx(rings.txFD)
                c.add(.txKicks, 1)
            }
        }
        if r < count { c.add(.dropTxRingFull, UInt64(count - r)) }
        return r
    }

    /// Moves free frames to the fill ring, keeping some back for TX, once there
    /// is room for a chunk (`refillChunk`, an eighth of the ring, or all the lane wants
    /// if less). The kernel reloads the fill producer whenever the entries it
    /// has seen run out: topped up a few frames per turn, that was a cache miss
    /// every few packets on the CPU that receives (on veth, the sender's); in
    /// chunks it is one per chunk. `lanes drop` on veth: 1.10x the rate of
    /// per-turn top-ups, median of 8 paired rounds (BENCHMARKS.md, 2026-11-30).
    @inlinable @inline(__always)
    mutating func refill() {
        let want = pool.count - pool.capacity / 4
        guard want >= batch || (want > 0 && pool.count == pool.capacity) else { return }
        // reserve is all-or-nothing: ask only for the room there is.
        let chunk = min(refillChunk, want)
        let room = Int(xsk_prod_nb_free(rings.fill, UInt32(chunk)))
        guard room >= chunk else { return }
        var idx: UInt32 = 0
        let fill = rings.fill
        let r = Int(xsk_ring_prod__reserve(fill, UInt32(min(want, room)), &idx))
        guard r > 0 else { return }
        let slots = fill.slots(from: idx, as: UInt64.self)
        pool.pop(count: r) { i, addr in slots[i] = addr }
        xsk_ring_prod__submit(fill, UInt32(r))
        if xsk_ring_prod__needs_wakeup(rings.fill) != 0 {
            _ = lanes_kick_rx(rings.rxFD)
            context.counters.add(.rxWakeups, 1)
        }
    }

    // MARK: Multi-buffer (XDP_USE_SG)

    /// One RX burst of chained descriptors: whole packets go to the app, one
    /// descriptor each (the first buffer, with the packet's length and, in
    /// `options`, its index in `chain`). A packet still being written at the
    /// burst's end is left on the ring (peeked, then cancelled) for the next turn;
    /// one longer than a burst is dropped up to its last buffer, across turns.
    @inlinable
    mutating func receiveChains() -> Int {
        var idx: UInt32 = 0
        let rx = rings.rx, chain = self.chain, burst = self.burst, cap = chainCapacity
        // A packet left partly written last turn: its first buffers are cached;
        // look for the kernel's newer descriptors too.
        if waitingForRest { lanes_cons_refresh(rx); waitingForRest = false }
        let n = Int(xsk_ring_cons__peek(rx, UInt32(cap), &idx))
        guard n > 0 else { return 0 }
        let contd = lanes_xdp_pkt_contd()
        let descs = rx.slots(from: idx, as: FrameDesc.self)
        var end = 0 // one past the last buffer that ends a packet
        for i in 0..<n {
            let d = descs[i]
            chain[i] = d
            if d.options & contd == 0 { end = i &+ 1 }
        }
        let c = context.counters
        if end == 0 {
            guard discarding || n == cap else {
                xsk_ring_cons__cancel(rx, UInt32(n)) // the rest of the packet is not written yet
                waitingForRest = true
                return 0
            }
            if !discarding { c.add(.dropTooManyFrags, 1); c.add(.rxPackets, 1) }
            discarding = true
            for i in 0..<n { recycleReceived(chain[i]) }
            xsk_ring_cons__release(rx, UInt32(n))
            return n
        }
        if end < n { xsk_ring_cons__cancel(rx, UInt32(n &- end)); waitingForRest = true }
        xsk_ring_cons__release(rx, UInt32(end))
        var i = 0
        if discarding {
            // The tail of a packet longer than a burst.
            while true {
                let d = chain[i]
                recycleReceived(d)
                i &+= 1
                if d.options & contd == 0 { break }
            }
            discarding = false
        }
        let umemBytes = self.umemBytes
        let packets = Chains.packets(chain, from: i, to: end, into: burst, frameSize: context.frameSize, umemBytes: umemBytes, counters: c) {
            d in if d.addr < umemBytes { recycle(d.addr) }
        }
        c.add(.bursts, 1)
        guard packets > 0 else { return end }
        let k = app.process(burst, count: packets, context: context)
        if App.handsOff {
            // The first k left are drops (the rest went to other lanes).
            for j in 0..<k { recycleChain(burst[j]) }
            return end
        }
        if k > 0 { _ = transmitChains(burst, count: k) }
        for j in k..<packets { recycleChain(burst[j]) }
        return end
    }

    /// A received buffer back to the pool, unless its address is not one of the UMEM's.
    @inlinable @inline(__always)
    mutating func recycleReceived(_ d: FrameDesc) {
        if d.addr < umemBytes { recycle(d.addr) }
    }

    /// Every buffer of the packet whose first descriptor is `head`, back to the pools.
    @inlinable @inline(__always)
    mutating func recycleChain(_ head: FrameDesc) {
        let chain = self.chain
        Chains.forEachBuffer(of: head, in: chain) { recycle($0.addr) }
    }

    /// Puts packets burst[0..<count] (heads into `chain`) on the TX ring, each
    /// whole or not at all, in order; returns how many went (the rest are
    /// counted and their frames recycled here).
    @inlinable
    mutating func transmitChains(_ burst: UnsafeMutablePointer<FrameDesc>, count: Int) -> Int {
        let chain = self.chain
        let (packets, descriptors) = Chains.transmit(burst, count: count, chain: chain, tx: rings.tx, txFD: rings.txFD,
                                                     maxSegments: maxSegments, counters: context.counters) { head in
            Chains.forEachBuffer(of: head, in: chain) { recycle($0.addr) }
        }
        if latency && descriptors > 0 && xsk_ring_prod__needs_wakeup(rings.tx) == 0 { _ = lanes_kick_tx(rings.txFD); context.counters.add(.txKicks, 1) }
        txOutstanding &+= descriptors
        return packets
    }

    /// A multi-buffer generator's packets genBurst[0..<n], each written across its
    /// `unitFrames` consecutive frames: sent as one descriptor per frame.
    @inlinable
    mutating func transmitGenerated(_ n: Int) {
        let fs = context.frameSize
        let contd = lanes_xdp_pkt_contd()
        var k = 0
        for i in 0..<n {
            let base = genBurst[i].addr
            var left = Int(genBurst[i].len), off = 0
            genBurst[i].options = UInt32(k)
            repeat {
                let l = min(left, fs)
                left &-= l
                chain[k] = FrameDesc(addr: base &+ UInt64(off), len: UInt32(l), options: left > 0 ? contd : 0)
                k &+= 1
                off &+= fs
            } while left > 0
        }
        _ = transmitChains(genBurst, count: n)
    }

    @inlinable
    func publishGauges() {
        context.counters.set(.freeFrames, UInt64(freeFrames))
        context.counters.set(.fillFrames, UInt64(lanes_prod_occupancy(rings.fill)))
    }

    /// After the loop stopped: waits (up to `timeoutMs`) for TX in flight to
    /// complete, then says where every frame is.
    public mutating func drainAndAccount(timeoutMs: Int = 500) -> FrameLedger {
        var waited = 0
        while txOutstanding > 0 && waited < timeoutMs {
            if drainCompletions() == 0 {
                _ = lanes_kick_tx(rings.txFD)
                usleep(1000)
                waited += 1
            }
        }
        publishGauges()
        return FrameLedger(total: totalFrames, free: freeFrames,
                           fillRing: Int(lanes_prod_occupancy(rings.fill)),
                           rxRing: Int(lanes_cons_occupancy(rings.rx)),
                           inHands: 0,
                           txRing: Int(lanes_prod_occupancy(rings.tx)),
                           completionRing: Int(lanes_cons_occupancy(rings.completion)))
    }
}

/// Multi-buffer packets (AF_XDP XDP_USE_SG) as chains of descriptors,
/// XDP_PKT_CONTD on all but a packet's last: the one way the lane and the
/// pipeline's workers read them into whole packets and put them on a TX ring.
public enum Chains {
    /// Calls `body` with each descriptor of the packet whose first one is `head`
    /// (`head.options` is that descriptor's index in `chain`).
    @inlinable @inline(__always)
    public static func forEachBuffer(of head: FrameDesc, in chain: UnsafeMutablePointer<FrameDesc>, _ body: (FrameDesc) -> Void) {
        let contd = lanes_xdp_pkt_contd()
        var j = Int(head.options)
        while true {
            let d = chain[j]
            body(d)
            if d.options & contd == 0 { break }
            j &+= 1
        }
    }

    /// The whole packets in chain[from..<to] (which ends a packet) into `heads`,
    /// one descriptor each: the first buffer's address, the packet's length, and
    /// in `options` its first buffer's index. A packet with an invalid buffer (zero
    /// length, past its frame or the UMEM), or whose first buffer holds less than
    /// `LaneContext.headerBytes` of it, is counted and its buffers handed to `drop`.
    /// Counts every packet and byte as received. Returns the packets in `heads`.
    /// `countReceived: false` where another lane counted them (a pipeline worker).
    @inlinable
    public static func packets(_ chain: UnsafeMutablePointer<FrameDesc>, from: Int, to end: Int, into heads: UnsafeMutablePointer<FrameDesc>,
                               frameSize: Int, umemBytes: UInt64, counters c: LaneCounters, countReceived: Bool = true,
                               drop: (FrameDesc) -> Void) -> Int {
        let contd = lanes_xdp_pkt_contd()
        let fs = UInt64(frameSize), offsetMask = fs &- 1
        var i = from, packets = 0, seen = 0
        var bytes: UInt64 = 0
        while i < end {
            let first = i
            var total = 0
            var bad = false
            while true {
                let d = chain[i]
                i &+= 1
                total &+= Int(d.len)
                if d.len == 0 || d.addr >= umemBytes || (d.addr & offsetMask) &+ UInt64(d.len) > fs { bad = true }
                if d.options & contd == 0 { break }
            }
            seen &+= 1
            bytes &+= UInt64(total)
            if bad || Int(chain[first].len) < min(total, LaneContext.headerBytes) {
                c.add(bad ? .dropInvalidDesc : .dropMalformed, 1)
                for j in first..<i { drop(chain[j]) }
                continue
            }
            heads[packets] = FrameDesc(addr: chain[first].addr, len: UInt32(truncatingIfNeeded: total), options: UInt32(truncatingIfNeeded: first))
            packets &+= 1
        }
        if countReceived {
            c.add(.rxPackets, UInt64(seen))
            c.add(.rxBytes, bytes)
        }
        return packets
    }

    /// Puts packets heads[0..<count] (their buffers in `chain`) on `tx`, each
    /// whole or not at all, in order, and kicks when the kernel asks. A packet
    /// with more buffers than `maxSegments`, or for which the ring has no room, is
    /// counted and handed to `drop` (its first descriptor). Returns the packets
    /// and the descriptors that went.
    @inlinable
    public static func transmit(_ heads: UnsafeMutablePointer<FrameDesc>, count: Int, chain: UnsafeMutablePointer<FrameDesc>,
                                tx: UnsafeMutablePointer<xsk_ring_prod>, txFD: Int32, maxSegments: Int, counters c: LaneCounters,
                                drop: (FrameDesc) -> Void) -> (packets: Int, descriptors: Int) {
        let contd = lanes_xdp_pkt_contd()
        @inline(__always) func segments(_ head: FrameDesc) -> Int {
            var j = Int(head.options), n = 1
            while chain[j].options & contd != 0 { j &+= 1; n &+= 1 }
            return n
        }
        var need = 0
        for i in 0..<count { let s = segments(heads[i]); if s <= maxSegments { need &+= s } }
        let room = need > 0 ? Int(xsk_prod_nb_free(tx, UInt32(need))) : 0
        // The packets that go: every one that fits, in order, until the ring is full.
        var fit = 0, full = false
        for i in 0..<count {
            let s = segments(heads[i])
            if s > maxSegments || full || fit &+ s > room {
                if s > maxSegments { c.add(.dropTooManyFrags, 1) } else { full = true; c.add(.dropTxRingFull, 1) }
                drop(heads[i])
                heads[i].len = 0 // marks it gone
                continue
            }
            fit &+= s
        }
        guard fit > 0 else { return (0, 0) }
        var idx: UInt32 = 0
        let r = Int(xsk_ring_prod__reserve(tx, UInt32(fit), &idx))
        precondition(r == fit, "TX ring room checked")
        let slots = tx.slots(from: idx, as: FrameDesc.self)
        var k = 0, sent = 0
        var bytes: UInt64 = 0
        for i in 0..<count where heads[i].len > 0 {
            forEachBuffer(of: heads[i], in: chain) { d in
                slots[k] = FrameDesc(addr: d.addr, len: d.len, options: d.options & contd)
                k &+= 1
            }
            bytes &+= UInt64(heads[i].len)
            sent &+= 1
        }
        xsk_ring_prod__submit(tx, UInt32(fit))
        c.add(.txPackets, UInt64(sent))
        c.add(.txBytes, bytes)
        if xsk_ring_prod__needs_wakeup(tx) != 0 {
            _ = lanes_kick_tx(txFD)
            c.add(.txKicks, 1)
        }
        return (sent, fit)
    }
}
