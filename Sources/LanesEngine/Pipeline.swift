import Glibc
import LanesCore
import LanesReport
import LanesXDP

/// Pipeline mode (`lanes fwd --pipeline`): software RSS for NICs with fewer
/// queues than cores. One RX lane on one IN queue spreads packets by flow hash
/// over worker lanes on other cores through single-producer/single-consumer
/// rings; each worker is a lane (`Lane<App, WorkerInput>`: the same loop, fed by
/// its ring) that runs the app and transmits on its own OUT queue. All
/// sockets share the RX lane's UMEM; workers hand frames back through a return
/// ring per worker. A single flow goes to one worker, so its order holds; many
/// flows reach every worker. A full ring drops and counts, it never blocks.
public final class Pipeline {
    public let config: EngineConfig
    public let workerCores: [Int]
    let program: XDPProgram
    let umem: UMEM
    let rxSocket: XSKSocket
    let txSockets: [XSKSocket]
    let toWorker: [SPSCRing]
    let returns: [SPSCRing]
    public let stats: StatsArea
    let rxQueue: Int
    let rxCore: Int
    /// Frames set-up put on the RX socket's fill ring before attaching (the RX lane owns them).
    let primed: Int
    /// Sockets bound with XDP_USE_SG: a packet's descriptors travel to its worker together.
    public let multiBuffer: Bool
    let maxSegments: Int
    /// The kernel log from set-up on (device resets), opened before the privilege drop.
    let kernelLog = KernelLog()

    public init(_ config: EngineConfig, workerCores: [Int]) throws(LanesError) {
        try requireRoot(for: "AF_XDP")
        try config.umem.validate()
        try EngineConfig.checkBatch(config.batch)
        guard let out = config.outInterface else { throw LanesError("--pipeline needs an OUT interface") }
        guard !config.bidirectional else { throw LanesError("--pipeline forwards one way", fix: "drop --bidirectional") }
        let name = config.interface
        guard if_nametoindex(name) != 0 else { throw LanesError("interface '\(name)' not found", fix: "see 'ip link', or pass --netns NS") }
        guard if_nametoindex(out) != 0 else { throw LanesError("interface '\(out)' not found", fix: "see 'ip link', or pass --netns NS") }
        let queues = config.queues ?? [0]
        guard queues.count == 1 else { throw LanesError("--pipeline serves one RX queue (it spreads it over workers)", fix: "give --queues N with one queue") }
        let (rxq, _) = try InterfaceInfo.queueCount(name)
        guard queues[0] < rxq else { throw LanesError("queue \(queues[0]) out of range: \(name) has \(rxq) RX queue(s)", fix: "pick --queues within 0-\(rxq - 1)") }
        let (_, outTx) = try InterfaceInfo.queueCount(out)
        let online = Sysfs.onlineCPUs()
        guard !workerCores.isEmpty, workerCores.count <= 64 else { throw LanesError("--workers needs 1-64 cores", fix: "e.g. --workers 1-3") }
        guard workerCores.count <= outTx else {
            throw LanesError("\(workerCores.count) workers but \(out) has \(outTx) TX queue(s)", fix: "use at most \(outTx) workers (one OUT queue each)")
        }
        if let bad = (workerCores + (config.cores ?? [])).first(where: { $0 >= online }) {
            throw LanesError("core \(bad) out of range: \(online) CPUs online (0-\(online - 1))", fix: "pick cores within 0-\(online - 1)")
        }
        maxSegments = Engine.copyModeMaxSegments
        multiBuffer = try Engine.needsMultiBuffer(config, interfaces: [name, out], maxSegments: maxSegments)
        var socketConfig = config.socket
        socketConfig.multiBuffer = multiBuffer
        self.config = config
        self.workerCores = workerCores
        rxQueue = queues[0]
        rxCore = config.cores?.first ?? 0
        stats = StatsArea(lanes: 1 + workerCores.count)
        umem = try UMEM(config.umem)
        rxSocket = try XSKSocket(interface: name, queue: UInt32(rxQueue), umem: umem, config: socketConfig)
        var tx: [XSKSocket] = []
        for w in workerCores.indices {
            tx.append(try XSKSocket(interface: out, queue: UInt32(w), umem: umem, config: socketConfig, shared: true))
        }
        txSockets = tx
        let ringSize = max(1024, config.socket.rxSize)
        toWorker = workerCores.map { _ in SPSCRing(capacity: ringSize) }
        var cap = 1
        while cap < config.umem.frameCount { cap <<= 1 }
        returns = workerCores.map { _ in SPSCRing(capacity: cap) }
        program = try XDPProgram(filter: config.filter, action: config.kernelFIB != nil ? .forwardByFIB : .redirect, flowCapBps: config.flowCapBps,
                                 fib: try config.kernelFIB.map { k throws(LanesError) in try XDPProgram.FIBConfig(interface: name, egress: out, dropFragmentable: k.dropFragmentable) })
        primed = rxSocket.primeFill(frames: 0..<(config.umem.frameCount / 2), frameSize: config.umem.frameSize)
        try program.register(socketFD: rxSocket.fd, queue: UInt32(rxQueue))
        try program.attach(interface: name, mode: config.xdpMode, force: config.force)
    }

    public func close() { program.detach(); program.unregister(queue: UInt32(rxQueue)) }

    deinit { close() }

    /// Runs until `duration`, SIGINT/SIGTERM or the interface going away. Worker
    /// apps come from `makeApp(worker)`. Returns a summary with the RX lane
    /// first (direction "rx->workers") and then each worker.
    @_specialize(exported: true, where App == IOApp)
    @_specialize(exported: true, where App == L2App)
    @_specialize(exported: true, where App == L3App)
    @_specialize(exported: true, where App == L3FIBApp)
    public func run<App: LaneApp>(duration: Double?, interval: Double, onInterval: (IntervalReport) -> Void,
                                  makeApp: (Int) -> App) throws(LanesError) -> RunSummary {
        StopSignals.block()
        let allowancesAtStart = EC2Shaping.read(interface: config.interface)
        let stop = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
        stop.initialize(to: 0)
        defer { stop.deallocate() }
        let area = umem.area, fs = umem.config.frameSize, fc = umem.config.frameCount, batch = config.batch, primed = self.primed
        let multiBuffer = self.multiBuffer, maxSegments = self.maxSegments
        // --latency and --busy-poll as the engine's lanes take them: the RX lane spins
        // (busy-polling its socket when idle) and kicks TX every burst; so do the workers.
        let latency = config.latency, busyPoll = config.socket.busyPoll
        let fanout = FanoutApp(rings: toWorker, returns: returns, frameMask: ~UInt64(fs - 1))
        let ledgerSlot = LaneResultSlots<FanoutApp>(count: 1)
        var threads: [PinnedThread] = []
        let rxSocket = self.rxSocket
        let zc = rxSocket.boundMode == .zeroCopy
        // A thread that cannot start (or be pinned) stops and joins the ones before it.
        do {
            threads.append(try PinnedThread(core: rxCore, name: "rx\(rxQueue)") { [stats] in
                var lane = Lane(rings: LaneRings(receiving: rxSocket, transmitting: rxSocket), app: fanout, umem: area, frameSize: fs, frameCount: fc, primed: primed, batch: batch, counters: stats.counters(0),
                                multiBuffer: multiBuffer, maxSegments: maxSegments)
                lane.latency = latency
                lane.busyPoll = busyPoll
                lane.run(stop: stop)
                ledgerSlot.apps[0] = lane.app
                // Hand back what is still in flight: the main thread finishes the accounting.
                ledgerSlot.ledgers[0] = lane.drainAndAccount(driverHolds: zc)
                lane.app.reclaimAll(into: &lane.pool)
                ledgerSlot.ledgers[0] = FrameLedger(total: lane.totalFrames, free: lane.freeFrames, fillRing: lane.input.occupancy.fill,
                                                    rxRing: lane.input.occupancy.rx, inHands: 0, txRing: 0, completionRing: 0,
                                                    inDriver: zc ? lane.input.heldByKernel : 0)
            })
            for (w, core) in workerCores.enumerated() {
                let app = makeApp(w)
                let tx = txSockets[w]
                let input = toWorker[w], back = returns[w]
                let counters = stats.counters(1 + w)
                threads.append(try PinnedThread(core: core, name: "worker\(w)") {
                    // A lane like any other, fed by the fan-out ring: it starts with no frame
                    // of its own (all are the RX lane's, `primed`) and returns each it is done with.
                    var worker = Lane(input: WorkerInput(input: input, returns: back), out: TXRings(tx), app: app, umem: area,
                                      frameSize: fs, frameCount: fc, primed: fc, batch: batch, counters: counters,
                                      multiBuffer: multiBuffer, maxSegments: maxSegments)
                    worker.latency = latency
                    worker.run(stop: stop)
                })
            }
        } catch {
            stop.storeRelaxed(2)
            threads.forEach { $0.join() }
            throw error
        }
        let start = monotonicSeconds()
        var previous = snapshot()
        let monitor = Monitor(duration: duration, interval: interval, watching: [config.interface, config.outInterface!])
        // The RX lane serves one queue of IN; the workers' OUT queues hold bound
        // sockets, which the kernel keeps from going.
        var watch = RunWatch([DeviceWatch.Port(name: config.interface, programID: program.attachedID, queues: [rxQueue], takesLargerMTU: multiBuffer),
                              DeviceWatch.Port(name: config.outInterface!, programID: nil, queues: [], takesLargerMTU: true)], log: kernelLog)
        let reason = monitor.run(start: start, check: { now in watch.check(now: now, start: start)
        }, tick: { elapsed, seconds in
            let cur = snapshot()
            onInterval(IntervalReport(elapsed: elapsed, seconds: seconds, lanes: labels, previous: previous, current: cur))
            previous = cur
        })
        // Workers first drain their rings and TX, returning every frame; then the RX lane.
        stop.storeRelaxed(1) // relaxed: it only starts the workers' drain
        threads.dropFirst().forEach { $0.join() }
        // Release, after the workers' joins: pairs with the RX lane's acquire load
        // when it sees 2 (Lane.run), so the workers' last writes to the rings (their
        // consumer index and cache) happen before the lane takes over the consumer
        // side of the rings to them (FanoutApp.reclaimAll).
        stop.storeRelease(2)
        threads.first?.join()
        // The fan-out reached the rings unmanaged: they live until every thread is done.
        withExtendedLifetime((toWorker, returns, fanout)) {}
        let elapsed = monotonicSeconds() - start
        let snaps = snapshot()
        var lanes: [RunSummary.LaneSummary] = []
        let none = FrameLedger(total: 0, free: 0, fillRing: 0, rxRing: 0, inHands: 0, txRing: 0, completionRing: 0)
        for (k, (q, core)) in labels.enumerated() {
            lanes.append(.init(queue: q, core: core, direction: k == 0 ? "rx->workers" : "worker\(k - 1)->\(config.outInterface!)", counters: snaps[k],
                               xsk: k == 0 ? rxSocket.statistics() : txSockets[k - 1].statistics(),
                               xdp: k == 0 ? program.counters(queue: UInt32(rxQueue)) : XDPQueueCounters(),
                               frames: k == 0 ? (ledgerSlot.ledgers[0] ?? FrameLedger(total: fc, free: 0, fillRing: 0, rxRing: 0, inHands: 0, txRing: 0, completionRing: 0)) : none))
        }
        var summary = RunSummary(config: config, bindMode: rxSocket.boundMode.rawValue, program: program, umemPlacement: umem.placement,
                                 umemBytes: umem.config.bytes, duration: elapsed, exitReason: reason, multiBuffer: multiBuffer, lanes: lanes)
        summary.ec2Shaping = EC2Shaping.between(allowancesAtStart, EC2Shaping.read(interface: config.interface))
        summary.fault = watch.fault(endedBy: reason, monitor)
        summary.linkDownEvents = watch.link.downEvents
        return summary
    }

    var labels: [(Int, Int)] { [(rxQueue, rxCore)] + workerCores.enumerated().map { ($0.offset, $0.element) } }
    /// Each lane's queue, core and interface (the RX lane's IN queue, then each
    /// worker's OUT queue), its socket's XDP_STATISTICS, and the XDP program's
    /// counters of the RX queue: what `--metrics` serves.
    public var metricLanes: [(queue: Int, core: Int, interface: String, xsk: XSKStatistics)] {
        [(rxQueue, rxCore, config.interface, rxSocket.statistics())]
            + workerCores.enumerated().map { ($0.offset, $0.element, config.outInterface!, txSockets[$0.offset].statistics()) }
    }
    public var programCounters: XDPQueueCounters { program.counters(queue: UInt32(rxQueue)) }
    public func snapshot() -> [LaneSnapshot] { (0..<(1 + workerCores.count)).map { stats.counters($0).snapshot() } }
}

/// The RX lane's app in pipeline mode: hashes each packet's flow to a worker and
/// enqueues it there; frames the workers return go back to the lane's pool.
struct FanoutApp: LaneApp {
    /// The rings own their storage; the pipeline keeps them alive for the whole
    /// run, so the lane reaches them unmanaged: no retain/release per burst.
    let rings: UnsafeMutablePointer<Unmanaged<SPSCRing>>
    let returns: UnsafeMutablePointer<Unmanaged<SPSCRing>>
    let workers: Int
    let frameMask: UInt64
    let perWorker: UnsafeMutablePointer<FrameDesc> // workers x 256 staging slots
    let counts: UnsafeMutablePointer<Int>
    let returned: UnsafeMutablePointer<FrameDesc>
    /// What the pointers above point into, freed with the last copy of the app.
    let memory: (rings: OwnedBuffer<Unmanaged<SPSCRing>>, returns: OwnedBuffer<Unmanaged<SPSCRing>>,
                 descs: OwnedBuffer<FrameDesc>, counts: OwnedBuffer<Int>)

    /// `rings` and `returns` must outlive the app (the pipeline holds them).
    init(rings: [SPSCRing], returns: [SPSCRing], frameMask: UInt64) {
        precondition(rings.count == returns.count)
        workers = rings.count
        memory = (OwnedBuffer(count: workers, initial: Unmanaged.passUnretained(rings[0])),
                  OwnedBuffer(count: workers, initial: Unmanaged.passUnretained(returns[0])),
                  OwnedBuffer(count: (workers + 1) * 256, initial: FrameDesc(addr: 0, len: 0)),
                  OwnedBuffer(count: workers, initial: 0))
        self.rings = memory.rings.pointer
        self.returns = memory.returns.pointer
        for k in 0..<workers { self.rings[k] = Unmanaged.passUnretained(rings[k]); self.returns[k] = Unmanaged.passUnretained(returns[k]) }
        self.frameMask = frameMask
        perWorker = memory.descs.pointer
        returned = memory.descs.pointer + workers * 256
        counts = memory.counts.pointer
    }

    /// Frames the workers are done with, back into the pool (called each burst
    /// through `process` and once at the end).
    mutating func reclaim(into pool: inout FramePool) {
        reclaimReturns(into: &pool)
    }

    /// At the end only: also what still waits in the rings to the workers. The
    /// lane takes over their consumer side here, after the workers were joined and
    /// the stop word's release/acquire pair (Pipeline.run, Lane.run) ordered their
    /// last writes to the rings before this.
    mutating func reclaimAll(into pool: inout FramePool) {
        drain(returns, into: &pool)
        drain(rings, into: &pool)
    }

    @inline(__always)
    mutating func reclaimReturns(into pool: inout FramePool) { drain(returns, into: &pool) }

    /// Every descriptor waiting in `from`, back into the pool.
    @inline(__always)
    func drain(_ from: UnsafeMutablePointer<Unmanaged<SPSCRing>>, into pool: inout FramePool) {
        let mask = frameMask, ret = returned
        for k in 0..<workers {
            from[k]._withUnsafeGuaranteedRef { r in
                while true {
                    let n = r.dequeue(into: ret, max: 256)
                    if n == 0 { break }
                    pool.push(count: n) { ret[$0].addr & mask }
                }
            }
        }
    }

    mutating func process(_ burst: UnsafeMutablePointer<FrameDesc>, count: Int, context: LaneContext) -> Int {
        if let chain = context.chain { return processChains(burst, count: count, chain: chain, context: context) }
        let w = workers
        for i in 0..<w { counts[i] = 0 }
        for i in 0..<count {
            let d = burst[i]
            let k = Int(FanoutApp.flowHash(context.bytes(d), Int(d.len)) % UInt32(w))
            if counts[k] == 256 { continue } // cannot happen: init checked the burst (EngineConfig.batchRange)
            perWorker[k * 256 + counts[k]] = d
            counts[k] += 1
        }
        // Everything handed on is out of the lane's hands; what does not fit stays in
        // the burst's tail for the lane to recycle as drops.
        var dropped = 0
        for k in 0..<w where counts[k] > 0 {
            let put = rings[k]._withUnsafeGuaranteedRef { $0.enqueue(perWorker + k * 256, count: counts[k]) }
            if put < counts[k] {
                for j in put..<counts[k] { burst[count - 1 - dropped] = perWorker[k * 256 + j]; dropped += 1 }
            }
        }
        if dropped > 0 { context.counters.add(.dropRingFull, UInt64(dropped)) }
        // handsOff contract: the first `dropped` descriptors are recycled by the lane.
        if dropped > 0 { for j in 0..<dropped { burst[j] = burst[count - dropped + j] } }
        return dropped
    }

    /// Multi-buffer: each packet's descriptors go to its worker's ring together,
    /// or not at all (then it is a drop, placed first for the lane to recycle).
    mutating func processChains(_ burst: UnsafeMutablePointer<FrameDesc>, count: Int, chain: UnsafeMutablePointer<FrameDesc>, context: LaneContext) -> Int {
        let w = UInt32(workers), stage = returned
        var dropped = 0
        for i in 0..<count {
            let d = burst[i]
            let k = Int(FanoutApp.flowHash(context.bytes(d), context.headLength(d)) % w)
            var n = 0
            Chains.forEachBuffer(of: d, in: chain) { stage[n] = $0; n &+= 1 }
            if !rings[k]._withUnsafeGuaranteedRef({ $0.enqueueAll(stage, count: n) }) {
                burst[dropped] = d // dropped <= i: that slot was read already
                dropped &+= 1
            }
        }
        if dropped > 0 { context.counters.add(.dropRingFull, UInt64(dropped)) }
        return dropped
    }

    static var handsOff: Bool { true }

    /// A cheap hash of the IPv4/IPv6 5-tuple (0 for anything else).
    @inline(__always)
    static func flowHash(_ p: UnsafeMutableRawPointer, _ len: Int) -> UInt32 {
        guard len >= 34 else { return 0 }
        let type = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 12, as: UInt16.self))
        var h: UInt64 = 0
        if type == 0x0800 {
            let ihl = Int(p.load(fromByteOffset: 14, as: UInt8.self) & 15) * 4
            h = UInt64(p.loadUnaligned(fromByteOffset: 26, as: UInt32.self)) ^ UInt64(p.loadUnaligned(fromByteOffset: 30, as: UInt32.self)) << 32
            if 14 + ihl + 4 <= len { h ^= UInt64(p.loadUnaligned(fromByteOffset: 14 + ihl, as: UInt32.self)) &* 0x9e37_79b9 }
            h ^= UInt64(p.load(fromByteOffset: 23, as: UInt8.self))
        } else if type == 0x86dd, len >= 58 {
            for o in stride(from: 22, to: 54, by: 8) { h = (h ^ p.loadUnaligned(fromByteOffset: o, as: UInt64.self)) &* 0x100_0000_01b3 }
            h ^= UInt64(p.loadUnaligned(fromByteOffset: 54, as: UInt32.self))
        }
        h = (h ^ (h >> 33)) &* 0xff51_afd7_ed55_8ccd
        return UInt32(truncatingIfNeeded: h ^ (h >> 33))
    }
}
