import Glibc
import LanesCore
import LanesXDP

/// One lane: one RX/TX queue pair, served by one thread pinned to one core, run
/// to completion in bursts: drain completions, peek RX, hand the burst to the app,
/// submit TX, refill the fill ring, and kick the kernel only when need_wakeup asks.
/// Nothing on this path allocates, retains, locks, or makes a per-packet syscall.
/// The receive half is `Input`: an AF_XDP socket's RX and fill rings, or a
/// pipeline worker's rings from and back to the RX lane; the loop is the same.
public struct Lane<App: LaneApp, Input: LaneInput & ~Copyable>: ~Copyable {
    /// Where packets come from and free frames go back (RX and fill rings).
    public var input: Input
    /// TX and completion of the socket it transmits on.
    public var out: Transmitter
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
    /// `--latency`: the lane spins instead of sleeping and kicks TX after every
    /// burst it submits, not only when the kernel asks (one core at 100% per lane).
    public var latency: Bool {
        get { out.kickEveryBurst }
        set { out.kickEveryBurst = newValue }
    }
    /// With `latency`: the socket has SO_PREFER_BUSY_POLL; idle turns busy-poll it.
    public var busyPoll = false

    /// The lane owns frames `firstFrame ..< firstFrame + frameCount` of the UMEM:
    /// the first ones receive (fill ring, RX), a generator's own are the last.
    /// `primed`: frames `firstFrame ..< firstFrame + primed` are on the fill ring
    /// already (set-up put them there before attaching the XDP program).
    public init(input: consuming Input, out: consuming TXRings, app: App, umem: UnsafeMutableRawPointer, frameSize: Int, frameCount: Int,
                firstFrame: Int = 0, primed: Int = 0, batch: Int, counters: LaneCounters,
                multiBuffer: Bool = false, maxSegments: Int = 18, umemBytes: Int? = nil) {
        self.input = input
        self.out = Transmitter(out, counters: counters)
        let unit = multiBuffer ? max(1, (app.largestPacket + frameSize - 1) / frameSize) : 1
        precondition(unit <= maxSegments, "a generator packet of \(app.largestPacket) bytes needs \(unit) buffers")
        precondition(multiBuffer || app.largestPacket <= frameSize, "a \(app.largestPacket)-byte packet needs multi-buffer")
        // A multi-buffer generator's packets take `unit` frames each.
        let g = FrameSplit.split(frameCount: frameCount, requested: app.generatorFrames(of: frameCount), primed: primed, unit: unit).generator
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
    /// sending while the lane still receives and completes what is in flight; a
    /// worker lane (`Input.endsWhenDrained`) ends once its input is empty and
    /// its TX done.
    @inlinable
    public mutating func run(stop: UnsafePointer<UInt64>) {
        let c = context.counters
        refill()
        var idle = 0
        while true {
            let s = stop.loadRelaxed() // relaxed while running: it only ends the loop
            // Acquire once it ends: pairs with the owner's release store of 2, so what
            // other threads did before it (a pipeline's joined workers) is seen here.
            if s >= 2 { _ = stop.loadAcquire(); break }
            if s == 1 && !draining { draining = true }
            if step() == 0 {
                if draining && Input.endsWhenDrained && input.isEmpty {
                    if out.outstanding == 0 { break }
                    out.kick()
                }
                idle &+= 1
                if latency {
                    // --latency: never sleep. With --busy-poll the socket's busy
                    // poll drives the device queue from here (a non-blocking recv).
                    if busyPoll { input.busyPoll() }
                    // A lane that never sleeps in poll() wakes a zero-copy driver itself:
                    // one that has posted every frame it had refills only when woken.
                    if idle >= 4096 { input.wakeIfAsked(counters: c); publishGauges(); idle = 0 }
                } else if generating && !finishedReported {
                    // Waiting for the pacing clock: short sleeps keep the rate even.
                    if idle >= 64 { usleep(10); idle = 0 }
                } else if idle >= 256 {
                    // Idle: wait for input (an AF_XDP lane sleeps in poll(), which wakes the kernel too).
                    input.idle(counters: c)
                    idle = 0
                    publishGauges()
                }
            } else {
                idle = 0
            }
        }
        publishGauges()
    }

    /// Hands the pool's free frames back to the input (the fill ring).
    @inlinable @inline(__always)
    public mutating func refill() { input.refill(&pool, batch: batch, counters: context.counters) }

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
        if limit > 0 { limit = min(limit, Int(out.rings.tx.free(UInt32(limit &* unit))) / unit) }
        let now = monotonicNanos()
        let n = limit > 0 && !draining ? app.budget(limit, now: now) : 0
        if n == 0 {
            if !finishedReported && (app.finished || draining) && out.outstanding == 0 {
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
        let sent = out.transmit(genBurst, count: n)
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
        let (done, n) = out.completed(max: batch)
        if n > 0 {
            let mask = frameMask
            if generating {
                for i in 0..<n { recycle(done[i]) }
            } else {
                pool.push(count: n) { done[$0] & mask }
            }
        }
        out.release(n)
        return n
    }

    @inlinable @inline(__always)
    mutating func receiveBurst() -> Int {
        if multiBuffer { return receiveChains() }
        let burst = self.burst
        var bytes: UInt64 = 0
        let n = input.peek(into: burst, max: batch, bytes: &bytes)
        guard n > 0 else { return 0 }
        input.release(n, ofPeeked: n)
        let c = context.counters
        if Input.countsReceived {
            c.add(.rxPackets, UInt64(n))
            c.add(.rxBytes, bytes)
        }
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
            sent = out.transmit(burst, count: k)
        }
        // Drops (from the app, or TX ring full) go back to the free frames:
        // received frames always came from `pool` (through the fill ring).
        if sent < n {
            let mask = frameMask
            pool.push(count: n - sent) { burst[sent + $0].addr & mask }
        }
        return n
    }

    // MARK: Multi-buffer (XDP_USE_SG)

    /// One RX burst of chained descriptors: whole packets go to the app, one
    /// descriptor each (the first buffer, with the packet's length and, in
    /// `options`, its index in `chain`). A packet still being written at the
    /// burst's end is left on the ring (peeked, then cancelled) for the next turn;
    /// one longer than a burst is dropped up to its last buffer, across turns.
    @inlinable
    mutating func receiveChains() -> Int {
        let chain = self.chain, burst = self.burst, cap = chainCapacity
        // A packet left partly written last turn stays on the input; the peek
        // sees it again with what the kernel wrote since.
        var unused: UInt64 = 0
        let n = input.peek(into: chain, max: cap, bytes: &unused)
        guard n > 0 else { return 0 }
        let contd = FrameDesc.continues
        var end = 0 // one past the last buffer that ends a packet
        for i in 0..<n where chain[i].options & contd == 0 { end = i &+ 1 }
        let c = context.counters
        if end == 0 {
            guard discarding || n == cap else {
                input.release(0, ofPeeked: n) // the rest of the packet is not written yet
                return 0
            }
            if !discarding { c.add(.dropTooManyFrags, 1); if Input.countsReceived { c.add(.rxPackets, 1) } }
            discarding = true
            for i in 0..<n { recycleReceived(chain[i]) }
            input.release(n, ofPeeked: n)
            return n
        }
        input.release(end, ofPeeked: n)
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
        let packets = Chains.packets(chain, from: i, to: end, into: burst, frameSize: context.frameSize, umemBytes: umemBytes, counters: c,
                                     countReceived: Input.countsReceived) {
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
        let sent = out.transmitChains(burst, count: count, chain: chain, maxSegments: maxSegments)
        if sent < count { for i in 0..<count where burst[i].len == 0 { recycleChain(burst[i]) } }
        return sent
    }

    /// A multi-buffer generator's packets genBurst[0..<n], each written across its
    /// `unitFrames` consecutive frames: sent as one descriptor per frame.
    @inlinable
    mutating func transmitGenerated(_ n: Int) {
        let fs = context.frameSize
        let contd = FrameDesc.continues
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
        context.counters.set(.fillFrames, UInt64(input.occupancy.fill))
    }

    /// After the loop stopped: waits (up to `timeoutMs`) for TX in flight to
    /// complete, then says where every frame is.
    /// `driverHolds`: the socket is bound zero-copy, so the driver's RX ring holds
    /// frames it took from the fill ring (counted as `inDriver`, not as missing).
    public mutating func drainAndAccount(timeoutMs: Int = 500, driverHolds: Bool = false) -> FrameLedger {
        var waited = 0
        while out.outstanding > 0 && waited < timeoutMs {
            if drainCompletions() == 0 {
                out.kick()
                usleep(1000)
                waited += 1
            }
        }
        publishGauges()
        return FrameLedger(total: totalFrames, free: freeFrames,
                           fillRing: input.occupancy.fill, rxRing: input.occupancy.rx, inHands: 0,
                           txRing: out.rings.tx.occupancy, completionRing: out.rings.completion.occupancy,
                           inDriver: driverHolds ? input.heldByKernel : 0)
    }
}

extension Lane where Input == XSKInput {
    /// A lane on an AF_XDP socket's rings (see the main initializer).
    public init(rings: consuming LaneRings, app: App, umem: UnsafeMutableRawPointer, frameSize: Int, frameCount: Int,
                firstFrame: Int = 0, primed: Int = 0, batch: Int, counters: LaneCounters,
                multiBuffer: Bool = false, maxSegments: Int = 18, umemBytes: Int? = nil) {
        let r = rings
        self.init(input: XSKInput(rx: r.rx, fill: r.fill, socket: r.rxSocket), out: r.out, app: app, umem: umem,
                  frameSize: frameSize, frameCount: frameCount, firstFrame: firstFrame, primed: primed, batch: batch,
                  counters: counters, multiBuffer: multiBuffer, maxSegments: maxSegments, umemBytes: umemBytes)
    }

    /// Two lanes on one thread, one per direction of a two-port forwarder
    /// (`lanes fwd --bidirectional`): turns alternate, idle sleeps poll both sockets.
    @inlinable
    public static func runPair<Other: LaneApp>(_ a: inout Lane<App, XSKInput>, _ b: inout Lane<Other, XSKInput>, stop: UnsafePointer<UInt64>) {
        a.refill()
        b.refill()
        var idle = 0
        while stop.loadRelaxed() < 2 {
            if a.step() &+ b.step() == 0 {
                idle &+= 1
                if a.latency {
                    if idle >= 4096 { a.publishGauges(); b.publishGauges(); idle = 0 }
                } else if idle >= 256 {
                    XSKHandle.waitReadable(a.input.socket, b.input.socket, timeoutMs: 1)
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

}

/// Multi-buffer packets (AF_XDP XDP_USE_SG) as chains of descriptors,
/// XDP_PKT_CONTD on all but a packet's last: the one way the lane and the
/// pipeline's workers read them into whole packets (`Transmitter.transmitChains`
/// puts them on a TX ring).
public enum Chains {
    /// Calls `body` with each descriptor of the packet whose first one is `head`
    /// (`head.options` is that descriptor's index in `chain`).
    @inlinable @inline(__always)
    public static func forEachBuffer(of head: FrameDesc, in chain: UnsafeMutablePointer<FrameDesc>, _ body: (FrameDesc) -> Void) {
        let contd = FrameDesc.continues
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
        let contd = FrameDesc.continues
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
}
