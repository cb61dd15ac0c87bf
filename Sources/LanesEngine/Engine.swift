import Glibc
import LanesCore
import LanesReport
import LanesXDP

/// How an engine is set up: which interface, which queues on which cores, the
/// UMEM and socket geometry, and how the XDP program is attached.
public struct EngineConfig: Sendable {
    public var interface: String
    /// Queues to serve; nil = every RX queue of the interface.
    public var queues: [Int]?
    /// One core per lane; nil = lane i on core i modulo the online CPUs.
    public var cores: [Int]?
    public var umem = UMEM.Config()
    public var socket = XSKSocket.Config()
    public var batch = 64
    /// The burst sizes a lane takes: its burst arrays (and the pipeline's
    /// per-worker fan-out) hold 256 descriptors.
    public static let batchRange = 1...256
    /// Throws unless `batch` is in `batchRange` (every path checks it at start).
    public static func checkBatch(_ batch: Int) throws(LanesError) {
        guard batchRange.contains(batch) else {
            throw LanesError("burst size \(batch) out of range", fix: "use --burst \(batchRange.lowerBound)-\(batchRange.upperBound) (default 64)")
        }
    }
    public var xdpMode: XDPMode = .auto
    public var filter = LaneFilter.all
    public var force = false
    /// Attach the XDP program (needed to receive; a TX-only generator skips it).
    public var attachProgram = true
    /// Per-flow policer on ingress, bits per second (0: off): EC2's per-flow cap, emulated.
    public var flowCapBps: UInt64 = 0
    /// Two-port forwarding: lane i receives on queue i of `interface` and
    /// transmits on queue i of `outInterface`, both sockets on the lane's UMEM
    /// (XDP_SHARED_UMEM), so no packet byte is copied in user space.
    public var outInterface: String? = nil
    /// With `outInterface`: also forward OUT -> IN, in the same lane thread.
    public var bidirectional = false
    /// The longest packet the lanes' apps send (generators, replay): over a
    /// frame, it needs multi-buffer.
    public var largestPacket = 0
    /// AF_XDP multi-buffer (XDP_USE_SG): nil = when the MTU or `largestPacket`
    /// needs more than one frame per packet.
    public var multiBuffer: Bool? = nil
    /// `--latency`: lanes spin instead of sleeping and kick TX after every burst.
    public var latency = false
    /// Forwarding by the kernel's FIB (`fwd --mode l3 --routes kernel`): the XDP
    /// program looks each packet up (bpf_fib_lookup) and gives the lanes only what
    /// the kernel would forward by the other port, its MACs already the next hop's.
    public var kernelFIB: KernelFIB? = nil

    public struct KernelFIB: Sendable, Equatable {
        /// A DF-clear IPv4 packet over the egress MTU: dropped (and counted), not
        /// passed to the kernel to fragment (`--fragments drop`).
        public var dropFragmentable = false
        public init(dropFragmentable: Bool = false) { self.dropFragmentable = dropFragmentable }
    }

    public init(interface: String) { self.interface = interface }

    /// Default UMEM per lane, stated for --help and the README.
    public static let defaultUMEMBytes = UMEM.Config().bytes
}

/// One lane's kernel resources, made during set-up.
public final class LaneResources {
    public let queue: Int
    public let core: Int
    public let umem: UMEM
    public let socket: XSKSocket
    /// The out port's socket on the same UMEM (two-port forwarding).
    public let outSocket: XSKSocket?
    /// Frames set-up put on the fill ring of `socket` (from frame 0) and, forwarding
    /// both ways, of `outSocket` (from the second half's first frame): the lane owns them.
    var primed = 0, reversePrimed = 0
    init(queue: Int, core: Int, umem: UMEM, socket: XSKSocket, outSocket: XSKSocket?) {
        self.queue = queue; self.core = core; self.umem = umem; self.socket = socket; self.outSocket = outSocket
    }
    /// IN -> OUT (or IN -> IN with one port); OUT -> IN for `reverse`: taken
    /// from the sockets by the lane, once (a second take stops the process).
    func rings(reverse: Bool = false) -> LaneRings {
        let o = outSocket ?? socket
        return reverse ? LaneRings(receiving: o, transmitting: socket) : LaneRings(receiving: socket, transmitting: o)
    }
    /// What that lane's rings hold now, read through the sockets (the monitor).
    func occupancy(reverse: Bool = false) -> RingOccupancy {
        let o = outSocket ?? socket
        return reverse ? XSKSocket.occupancy(receiving: o, transmitting: socket) : XSKSocket.occupancy(receiving: socket, transmitting: o)
    }
}

/// The lane engine on one interface: the XDP program attached, one AF_XDP
/// socket and UMEM per queue, one pinned thread per lane. Set-up throws; the
/// lanes count. Shutdown (deinit or `close`) detaches the program and frees all.
public final class Engine {
    public let config: EngineConfig
    public let program: XDPProgram
    /// The program on the out port (bidirectional forwarding only).
    public let outProgram: XDPProgram?
    public private(set) var lanes: [LaneResources] = []
    /// Counter blocks per lane: 2 when a lane forwards both ways.
    public var halves: Int { config.bidirectional && config.outInterface != nil ? 2 : 1 }
    public let stats: StatsArea
    public let ifindex: UInt32
    public let numaNode: Int?
    /// Times the link was seen going down during the run (lanes pause and resume by themselves).
    public private(set) var linkDownEvents = 0
    /// The kernel log from set-up on, for the device resets it records (opened
    /// before the privileges are dropped).
    let kernelLog = KernelLog()
    /// Sockets bound with XDP_USE_SG: packets span frames.
    public let multiBuffer: Bool
    /// The most buffers one TX packet may have (copy mode: net.core.max_skb_frags + 1).
    public let maxSegments: Int

    public init(_ config: EngineConfig) throws(LanesError) {
        try requireRoot(for: "AF_XDP")
        try config.umem.validate()
        try EngineConfig.checkBatch(config.batch)
        let name = config.interface
        ifindex = if_nametoindex(name)
        guard ifindex != 0 else {
            throw LanesError("interface '\(name)' not found", fix: "see 'ip link', pass --netns NS, or run 'lanes testbed up'")
        }
        let (rxQueues, _) = try InterfaceInfo.queueCount(name)
        let queues = config.queues ?? Array(0..<rxQueues)
        if let bad = queues.first(where: { $0 >= rxQueues }) {
            throw LanesError("queue \(bad) out of range: \(name) has \(rxQueues) RX queue\(rxQueues == 1 ? "" : "s") (0-\(rxQueues - 1))",
                             fix: "pick --queues within 0-\(rxQueues - 1)")
        }
        guard Set(queues).count == queues.count else { throw LanesError("a queue is listed twice in --queues") }
        let online = Sysfs.onlineCPUs()
        let cores = config.cores ?? queues.indices.map { $0 % online }
        guard cores.count == queues.count else {
            throw LanesError("\(queues.count) queues but \(cores.count) cores", fix: "give one core per queue, e.g. --queues 0-1 --cores 0-1")
        }
        if let bad = cores.first(where: { $0 >= online }) {
            throw LanesError("core \(bad) out of range: \(online) CPUs online (0-\(online - 1))", fix: "pick --cores within 0-\(online - 1)")
        }
        if let out = config.outInterface {
            guard out != name else { throw LanesError("IN and OUT are both \(name)", fix: "give two interfaces, or use --mode macswap on one") }
            guard if_nametoindex(out) != 0 else {
                throw LanesError("interface '\(out)' not found", fix: "see 'ip link', or pass --netns NS (both ports must be in one namespace)")
            }
            let (outRx, outTx) = try InterfaceInfo.queueCount(out)
            let need = (queues.max() ?? 0) + 1
            guard outTx >= need && (!config.bidirectional || outRx >= need) else {
                throw LanesError("\(out) has \(outTx) TX queue(s); lane \(need - 1) needs queue \(need - 1) there", fix: "use --queues within both ports' queue counts")
            }
        }
        var umemConfig = config.umem
        maxSegments = Engine.copyModeMaxSegments
        multiBuffer = try Engine.needsMultiBuffer(config, interfaces: [name] + (config.outInterface.map { [$0] } ?? []), maxSegments: maxSegments)
        var socketConfig = config.socket
        socketConfig.multiBuffer = multiBuffer
        numaNode = Sysfs.read("/sys/class/net/\(name)/device/numa_node").flatMap(Int.init).flatMap { $0 >= 0 ? $0 : nil }
        umemConfig.numaNode = numaNode
        self.config = config
        stats = StatsArea(lanes: queues.count * (config.bidirectional && config.outInterface != nil ? 2 : 1))
        let action: XDPAction = config.kernelFIB != nil ? .forwardByFIB : .redirect
        func fib(_ from: String, _ to: String?) throws(LanesError) -> XDPProgram.FIBConfig? {
            guard let k = config.kernelFIB, let to else { return nil }
            return try XDPProgram.FIBConfig(interface: from, egress: to, dropFragmentable: k.dropFragmentable)
        }
        program = try XDPProgram(filter: config.filter, action: action, flowCapBps: config.flowCapBps, fib: try fib(name, config.outInterface))
        outProgram = config.bidirectional && config.outInterface != nil
            ? try XDPProgram(filter: config.filter, action: action, flowCapBps: config.flowCapBps, fib: try fib(config.outInterface!, name)) : nil
        // The program first, then the sockets: a packet that comes before its
        // queue's socket is registered passes to the kernel (bpf_redirect_map's
        // XDP_PASS default), and a driver that reconfigures its queues when a
        // program is attached does so before any socket binds. virtio_net does on
        // the first attach after boot, and a socket bound zero-copy before it got
        // no packet at all (its fill ring never read). libxdp attaches first too.
        if config.attachProgram {
            try program.attach(interface: name, mode: config.xdpMode, force: config.force)
            if let outProgram, let out = config.outInterface {
                do throws(LanesError) { try outProgram.attach(interface: out, mode: config.xdpMode, force: config.force) } catch {
                    program.detach()
                    throw error
                }
            }
        }
        do throws(LanesError) {
            for (q, core) in zip(queues, cores) {
                let umem = try UMEM(umemConfig)
                let sock = try XSKSocket(interface: name, queue: UInt32(q), umem: umem, config: socketConfig)
                let outSock = try config.outInterface.map { out throws(LanesError) in
                    try XSKSocket(interface: out, queue: UInt32(q), umem: umem, config: socketConfig, shared: true)
                }
                lanes.append(LaneResources(queue: q, core: core, umem: umem, socket: sock, outSocket: outSock))
            }
            if config.attachProgram {
                // Frames on the fill rings before a socket is registered: a packet
                // redirected to it before the lane's first turn finds a frame.
                let fc = umemConfig.frameCount, fs = umemConfig.frameSize
                for l in lanes {
                    if halves == 2 {
                        l.primed = l.socket.primeFill(frames: 0..<(fc / 2 / 2), frameSize: fs)
                        l.reversePrimed = l.outSocket!.primeFill(frames: (fc / 2)..<(fc / 2 + (fc - fc / 2) / 2), frameSize: fs)
                    } else {
                        l.primed = l.socket.primeFill(frames: 0..<(fc / 2), frameSize: fs)
                    }
                }
                for l in lanes { try program.register(socketFD: l.socket.fd, queue: UInt32(l.queue)) }
                if let outProgram {
                    for l in lanes { try outProgram.register(socketFD: l.outSocket!.fd, queue: UInt32(l.queue)) }
                }
            }
        } catch {
            program.detach()
            outProgram?.detach()
            throw error
        }
    }

    /// The first online CPU no lane runs on (the monitor's and helpers' core), if any.
    public static func spareCore(lanes: [Int]) -> Int? {
        let used = Set(lanes)
        return (0..<Sysfs.onlineCPUs()).first { !used.contains($0) }
    }

    /// Copy mode's limit on one TX packet's buffers: a head and
    /// net.core.max_skb_frags fragments.
    public static var copyModeMaxSegments: Int {
        (Sysfs.read("/proc/sys/net/core/max_skb_frags").flatMap(Int.init) ?? 17) + 1
    }

    /// Bytes of a packet one RX frame holds: copy mode leaves XDP_PACKET_HEADROOM
    /// (256) and the UMEM's headroom in front of it.
    public static func receiveBytes(_ umem: UMEM.Config) -> Int { umem.frameSize - 256 - umem.headroom }

    /// Whether the sockets bind with XDP_USE_SG: asked for, or needed because a
    /// frame at an interface's MTU (Ethernet and two VLAN tags on top) or the
    /// apps' longest packet does not fit one frame. Refuses a packet that would
    /// need more buffers than the kernel takes.
    public static func needsMultiBuffer(_ config: EngineConfig, interfaces: [String], maxSegments: Int) throws(LanesError) -> Bool {
        let rx = receiveBytes(config.umem), fs = config.umem.frameSize
        let mtu = interfaces.compactMap { Sysfs.mtu(of: $0) }.max() ?? 1500
        let frame = mtu + 14 + 8
        if config.largestPacket > fs * maxSegments {
            throw LanesError("a \(config.largestPacket)-byte packet needs \((config.largestPacket + fs - 1) / fs) frames of \(fs) bytes; the kernel takes at most \(maxSegments) per packet",
                             fix: fs < 4096 ? "use --frame-size 4096, or smaller packets" : "use smaller packets")
        }
        let needed = frame > rx || config.largestPacket > fs
        if config.multiBuffer == false && config.largestPacket > fs {
            throw LanesError("a \(config.largestPacket)-byte packet does not fit one \(fs)-byte frame without multi-buffer", fix: "drop --multi-buffer off, or send smaller packets")
        }
        if config.multiBuffer == false && frame > rx {
            throw LanesError("an MTU of \(mtu) brings frames of up to \(frame) bytes; without multi-buffer one \(fs)-byte frame takes \(rx) (the kernel would drop the rest)",
                             fix: "drop --multi-buffer off\(fs < 4096 && frame <= 4096 - 256 - config.umem.headroom ? ", use --frame-size 4096" : ""), or lower the MTU to \(rx - 22)")
        }
        return config.multiBuffer ?? needed
    }

    /// Detaches the program and releases sockets and UMEM. Safe to call twice.
    public func close() {
        program.detach()
        outProgram?.detach()
        for l in lanes { program.unregister(queue: UInt32(l.queue)) }
        lanes.removeAll()
    }

    deinit { close() }

    public var bindMode: String { lanes.first?.socket.boundMode.rawValue ?? "none" }
    /// Each lane's bind mode and why (one phrase when every lane has the same).
    public var bindSummary: String {
        let reasons = lanes.map(\.socket.bindReason)
        if let first = reasons.first, reasons.allSatisfy({ $0 == first }) { return first }
        return zip(lanes, reasons).map { "q\($0.queue) \($1)" }.joined(separator: ", ")
    }

    /// Runs every lane with an app from `makeApp(laneIndex)` until `duration`
    /// seconds pass, SIGINT/SIGTERM arrives, or the interface disappears.
    /// `onInterval` gets a report every `interval` seconds (0: never).
    /// Generator lanes that finish (count reached) end the run `grace` seconds later.
    /// Returns the summary and each lane's app as it ended.
    /// The lane loop is generic over its app; these specializations keep the
    /// project's apps free of witness-table calls on the per-packet path (an app
    /// from another module gets the generic loop unless it is added here).
    @_specialize(exported: true, where App == DropApp)
    @_specialize(exported: true, where App == MacSwapApp)
    @_specialize(exported: true, where App == GenApp)
    @_specialize(exported: true, where App == ImpairApp)
    @_specialize(exported: true, where App == IOApp)
    @_specialize(exported: true, where App == L2App)
    @_specialize(exported: true, where App == L3App)
    @_specialize(exported: true, where App == L3FIBApp)
    @_specialize(exported: true, where App == CaptureApp)
    @_specialize(exported: true, where App == ReplayApp)
    public func run<App: LaneApp>(duration: Double?, interval: Double, grace: Double = 0.2,
                                  onInterval: (IntervalReport) -> Void,
                                  makeReverseApp: ((Int) -> App)? = nil,
                                  makeApp: (Int) -> App) throws(LanesError) -> (summary: RunSummary, apps: [App]) {
        StopSignals.block()
        let allowancesAtStart = EC2Shaping.read(interface: config.interface)
        let stop = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
        stop.initialize(to: 0)
        defer { stop.deallocate() }
        let halves = self.halves
        let results = LaneResultSlots<App>(count: lanes.count * halves)
        var threads: [PinnedThread] = []
        let apps = lanes.indices.map { makeApp($0) }
        let reverseApps = halves == 2 ? lanes.indices.map { makeReverseApp?($0) ?? makeApp($0) } : []
        let generators = zip(apps, lanes).contains { $0.generatorFrames(of: $1.umem.config.frameCount) > 0 }
        let start = monotonicSeconds()
        for (i, l) in lanes.enumerated() {
            let app = apps[i]
            let area = l.umem.area, fs = l.umem.config.frameSize, fc = l.umem.config.frameCount
            let primed = l.primed, reversePrimed = l.reversePrimed
            let batch = config.batch, multiBuffer = self.multiBuffer, maxSegments = self.maxSegments
            let latency = config.latency, busyPoll = config.socket.busyPoll
            // Zero-copy: the driver holds frames it took from the fill ring (the ledger says so).
            let zc = l.socket.boundMode == .zeroCopy, zcOut = l.outSocket?.boundMode == .zeroCopy
            do {
                if halves == 2 {
                    let back = reverseApps[i]
                    let c0 = stats.counters(2 * i), c1 = stats.counters(2 * i + 1)
                    threads.append(try PinnedThread(core: l.core, name: "lane\(l.queue)") {
                        // Each direction owns half of the UMEM's frames: a frame cycles
                        // fill(IN) -> rx(IN) -> tx(OUT) -> completion(OUT) and back, never crossing.
                        var a = Lane(rings: l.rings(), app: app, umem: area, frameSize: fs, frameCount: fc / 2,
                                     firstFrame: 0, primed: primed, batch: batch, counters: c0,
                                     multiBuffer: multiBuffer, maxSegments: maxSegments, umemBytes: fc * fs)
                        var b = Lane(rings: l.rings(reverse: true), app: back, umem: area, frameSize: fs, frameCount: fc - fc / 2,
                                     firstFrame: fc / 2, primed: reversePrimed, batch: batch, counters: c1,
                                     multiBuffer: multiBuffer, maxSegments: maxSegments, umemBytes: fc * fs)
                        a.latency = latency; b.latency = latency
                        Lane.runPair(&a, &b, stop: stop)
                        results.ledgers[2 * i] = a.drainAndAccount(driverHolds: zc)
                        results.ledgers[2 * i + 1] = b.drainAndAccount(driverHolds: zcOut)
                        results.apps[2 * i] = a.app
                        results.apps[2 * i + 1] = b.app
                    })
                    continue
                }
                let counters = stats.counters(i)
                threads.append(try PinnedThread(core: l.core, name: "lane\(l.queue)") {
                    var lane = Lane(rings: l.rings(), app: app, umem: area, frameSize: fs, frameCount: fc,
                                    primed: primed, batch: batch, counters: counters,
                                    multiBuffer: multiBuffer, maxSegments: maxSegments)
                    lane.latency = latency
                    lane.busyPoll = busyPoll
                    lane.run(stop: stop)
                    results.ledgers[i] = lane.drainAndAccount(driverHolds: zc)
                    results.apps[i] = lane.app
                })
            } catch {
                stop.storeRelaxed(2)
                threads.forEach { $0.join() }
                throw error
            }
        }
        // The monitor (this thread) keeps off the lanes' cores where there is one to
        // spare: a spinning --latency lane preempted by it is a latency spike.
        if let spare = Engine.spareCore(lanes: lanes.map(\.core)) { pinCurrentThread(to: spare) }
        var previous = snapshot()
        var finishedAt: Double? = nil
        let monitor = Monitor(duration: duration, interval: interval, watching: [config.interface] + (config.outInterface.map { [$0] } ?? []))
        let served = lanes.map(\.queue)
        var ports = [DeviceWatch.Port(name: config.interface, programID: program.attachedID, queues: served, servesAll: config.queues == nil,
                                      takesLargerMTU: multiBuffer)]
        if let out = config.outInterface {
            ports.append(DeviceWatch.Port(name: out, programID: outProgram?.attachedID, queues: outProgram != nil ? served : [], takesLargerMTU: multiBuffer))
        }
        var watch = RunWatch(ports, log: kernelLog)
        let exitReason = monitor.run(start: start, check: { now in
            if finishedAt == nil && (0..<(lanes.count * halves)).allSatisfy({ stats.counters($0).snapshot()[.finished] == 1 }) {
                finishedAt = now
            }
            if let f = finishedAt, now - f >= grace { return .countReached }
            // A link that goes down: the sockets stay bound and the lanes wait.
            return watch.check(now: now, start: start)
        }, tick: { elapsed, seconds in
            let cur = snapshot()
            var report = IntervalReport(elapsed: elapsed, seconds: seconds, lanes: laneLabels, previous: previous, current: cur)
            report.framesUnaccounted = framesUnaccounted()
            report.residentBytes = ProcessMemory.residentBytes()
            onInterval(report)
            previous = cur
        })
        let elapsed = monotonicSeconds() - start
        if generators && exitReason != .countReached && exitReason != .interfaceLost {
            // Drain: generators stop sending; what is in flight still arrives.
            stop.storeRelaxed(1) // relaxed: the lanes only poll it
            let until = monotonicSeconds() + grace
            while monotonicSeconds() < until && StopSignals.wait(seconds: 0.02) == 0 {}
        }
        stop.storeRelaxed(2) // the joins order everything the lanes wrote before what follows
        threads.forEach { $0.join() }
        linkDownEvents = watch.link.downEvents
        var summary = makeSummary(duration: elapsed, ledgers: results.allLedgers, exitReason: exitReason)
        summary.fault = watch.fault(endedBy: exitReason, monitor)
        summary.ec2Shaping = EC2Shaping.between(allowancesAtStart, EC2Shaping.read(interface: config.interface))
        return (summary, results.allApps)
    }

    /// Where the frames are now, as seen from outside the lanes: each lane's free
    /// frames plus what its rings hold; the rest are in the kernel's hands (taken
    /// from the fill ring, not yet on RX; sent, not yet completed). A healthy lane
    /// shows up to some hundreds (in flight at the kernel, growing with the rate:
    /// 0-184 on two forwarding lanes at 0.8 Mpps here); a leak grows without bound. No frame is counted twice:
    /// the lane's own moves (free <-> rings) happen inside a turn, and the count is
    /// read between turns (the lane's `.turn` seqlock); the kernel's moves (fill ->
    /// RX, TX -> completion) go downstream, so each ring is read before the one
    /// upstream of it, and a frame moving meanwhile is missed, never seen twice.
    /// One exception is the kernel's: it publishes the fill ring's consumer only
    /// when it refreshes its cached batch, so frames it already moved to RX can
    /// still show in the fill ring (seen here: up to 25 frames under macswap; 4-7 of
    /// 60 samples). Such a lane counts as 0 unaccounted, the truth being at least 0.
    public func framesUnaccounted() -> Int {
        var missing = 0
        for (i, l) in lanes.enumerated() {
            for h in 0..<halves {
                let total = halves == 2 ? (h == 0 ? l.umem.config.frameCount / 2 : l.umem.config.frameCount - l.umem.config.frameCount / 2) : l.umem.config.frameCount
                let counters = stats.counters(i * halves + h)
                let count = { () -> Int in
                    let o = l.occupancy(reverse: h == 1)
                    return o.completion + o.tx + o.rx + o.fill + Int(counters.snapshot()[.freeFrames])
                }
                // A lane mid-turn on every one of 1000 tries: a plain read will do.
                missing += max(0, total - (counters.stableTurn(count) ?? count()))
            }
        }
        return missing
    }

    public func snapshot() -> [LaneSnapshot] { (0..<(lanes.count * halves)).map { stats.counters($0).snapshot() } }

    /// (queue, core) of each counter block, in order.
    public var laneLabels: [(Int, Int)] { lanes.flatMap { l in Array(repeating: (l.queue, l.core), count: halves) } }

    func makeSummary(duration: Double, ledgers: [FrameLedger?], exitReason: ExitReason) -> RunSummary {
        let snaps = snapshot()
        var laneSummaries: [RunSummary.LaneSummary] = []
        let inName = config.interface, outName = config.outInterface
        for (i, l) in lanes.enumerated() {
            for h in 0..<halves {
                let k = i * halves + h
                let rxSocket = h == 0 ? l.socket : l.outSocket!
                let prog = h == 0 ? program : outProgram!
                let direction = outName.map { h == 0 ? "\(inName)->\($0)" : "\($0)->\(inName)" }
                let total = halves == 2 ? (h == 0 ? l.umem.config.frameCount / 2 : l.umem.config.frameCount - l.umem.config.frameCount / 2) : l.umem.config.frameCount
                laneSummaries.append(.init(queue: l.queue, core: l.core, direction: direction, counters: snaps[k],
                                           xsk: rxSocket.statistics(), xdp: prog.counters(queue: UInt32(l.queue)),
                                           frames: ledgers[k] ?? FrameLedger(total: total, free: 0, fillRing: 0, rxRing: 0, inHands: 0, txRing: 0, completionRing: 0)))
            }
        }
        return RunSummary(config: config, bindMode: bindMode, program: program, umemPlacement: lanes.first?.umem.placement ?? "",
                          umemBytes: lanes.reduce(0) { $0 + $1.umem.config.bytes }, duration: duration, exitReason: exitReason,
                          linkDownEvents: linkDownEvents, multiBuffer: multiBuffer, lanes: laneSummaries)
    }
}

/// What each lane hands back at its end: one slot per lane, written only by that
/// lane's thread and read after the join (which orders the write before the
/// read). Separate elements of plain memory, not a Swift array: writes from two
/// threads to one array are two modifying accesses of the whole array.
final class LaneResultSlots<App>: @unchecked Sendable {
    let ledgers: UnsafeMutablePointer<FrameLedger?>
    let apps: UnsafeMutablePointer<App?>
    let count: Int
    init(count: Int) {
        self.count = count
        ledgers = .allocate(capacity: count)
        ledgers.initialize(repeating: nil, count: count)
        apps = .allocate(capacity: count)
        apps.initialize(repeating: nil, count: count)
    }
    deinit {
        ledgers.deinitialize(count: count); ledgers.deallocate()
        apps.deinitialize(count: count); apps.deallocate()
    }
    /// After the join.
    var allLedgers: [FrameLedger?] { Array(UnsafeBufferPointer(start: ledgers, count: count)) }
    var allApps: [App] { (0..<count).map { apps[$0]! } }
}

public enum ProcessMemory {
    /// VmRSS of this process, in bytes.
    public static func residentBytes() -> Int {
        guard let s = Sysfs.read("/proc/self/status") else { return 0 }
        for line in s.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let kb = line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
            return kb * 1024
        }
        return 0
    }
}
