import Glibc
import LanesCore
import LanesReport
import LanesXDP

/// One lane of the live-frames generator: a pinned thread that runs the
/// transmit program (bpf/lanes_gen.bpf.c) with BPF_PROG_RUN, on `core`.
public struct LiveGenLane: Sendable {
    public var queue: Int
    public var core: Int
    public var plan: GenLanePlan
    public init(queue: Int, core: Int, plan: GenLanePlan) { self.queue = queue; self.core = core; self.plan = plan }
}

/// `lanes gen --tx xdp`: the kernel builds no skb per packet. Each lane thread
/// calls BPF_PROG_RUN in live-frames mode with as many frames as are due (its
/// pace, or a chunk of about 10 ms when unpaced), so it checks the stop flag
/// between calls: SIGINT and --duration end a run within a chunk. The program
/// counts what it sent in the lane's state (mapped into this process) and drops
/// past the lane's limit, so --count is exact whatever the kernel's batching.
/// On veth a redirected frame lands on the peer's RX queue `CPU % queues`, so a
/// lane's core decides its queue there; on a NIC the receiver's RSS decides.
public final class LiveGenerator {
    public let program: LiveFramesProgram
    public let lanes: [LiveGenLane]
    public let stats: StatsArea
    public let ifindex: UInt32
    public let interface: String
    /// data_in: the frame the page pool initialises pages from (zeros, the largest size).
    let frame: UnsafeMutableRawPointer
    let frameBytes: Int
    let batch: Int
    /// Frames per call when unpaced: about 10 ms at a few Mpps.
    public static let unpacedChunk: UInt64 = 1 << 15
    /// Frames per call when the program is not attached (each call then waits for an
    /// RCU grace period of some milliseconds): about 60 ms at a few Mpps.
    public static let unattachedChunk: UInt64 = 1 << 18
    /// Set when the program could not be attached to the sending port.
    public var unattached = false
    /// Paced: one call per this much time's worth of frames (when that is more than one).
    public static let pacedSliceNs = 200_000.0

    /// Loads the program, writes every lane's pattern and limit. Lanes need distinct cores.
    public init(interface: String, lanes: [LiveGenLane], batch: Int) throws(LanesError) {
        guard Set(lanes.map(\.core)).count == lanes.count else {
            throw LanesError("--tx xdp runs one lane per core, but two lanes share a core", fix: "give distinct --cores, or use --tx xsk")
        }
        if let bad = lanes.first(where: { $0.core >= LiveFramesProgram.maxCPUs }) {
            throw LanesError("core \(bad.core) out of range for the live-frames path (at most \(LiveFramesProgram.maxCPUs) CPUs)")
        }
        try EngineConfig.checkBatch(batch)
        ifindex = if_nametoindex(interface)
        guard ifindex != 0 else {
            throw LanesError("interface '\(interface)' not found", fix: "see 'ip link', pass --netns NS, or run 'lanes testbed up'")
        }
        let largest = lanes.flatMap(\.plan.sizes).max() ?? 64
        guard largest <= LiveFramesProgram.maxFrameBytes else {
            throw LanesError("frame size \(largest) does not fit the live-frames path (at most \(LiveFramesProgram.maxFrameBytes) bytes)",
                             fix: "use --tx xsk for larger frames")
        }
        self.interface = interface
        self.lanes = lanes
        self.batch = batch
        let slots = lanes.reduce(0) { $0 + GenPattern.slotCount($1.plan) }
        let streams = lanes.first?.plan.flows.count ?? 1
        program = try LiveFramesProgram(slots: slots, streams: streams)
        let probe = program.probe()
        if probe < 0 {
            throw LanesError.system("run an XDP program in live-frames mode (BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES)", errno: -probe,
                                    fix: -probe == EINVAL || -probe == EOPNOTSUPP ? "needs Linux 5.18 or later; use --tx xsk" : nil)
        }
        frameBytes = max(largest, LiveFramesProgram.templateBytes)
        frame = .allocate(byteCount: frameBytes, alignment: 64)
        frame.initializeMemory(as: UInt8.self, repeating: 0, count: frameBytes)
        stats = StatsArea(lanes: lanes.count)
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: frameBytes, alignment: 64)
        let header = UnsafeMutableRawPointer.allocate(byteCount: GenPattern.templateBytes, alignment: 64)
        defer { scratch.deallocate(); header.deallocate() }
        var first = 0
        for l in lanes {
            let n = GenPattern.slotCount(l.plan)
            for j in 0..<n {
                let g = GenPattern.build(l.plan, slot: j, into: header, scratch: scratch, scratchBytes: frameBytes)
                try program.writeSlot(first + j, header: header, stream: Int(g.stream), length: Int(g.length),
                                      signatureOffset: Int(g.signature), checksumOffset: Int(g.checksum))
            }
            let sends = !l.plan.receiveOnly && !l.plan.streams.isEmpty
            program.setLane(cpu: l.core, firstSlot: first, slots: sends ? n : 0, ifindex: ifindex,
                            limit: sends ? (l.plan.count ?? .max) : 0)
            first += n
        }
    }

    deinit { frame.deallocate() }

    /// Frames sent per stream so far (each stream's next sequence number).
    public func sentPerStream() -> [UInt64] { program.sequences() }

    /// Runs every lane until `duration`, SIGINT/SIGTERM, every count reached (then
    /// `grace` seconds for the last frames to land), or a lane's run fails.
    public func run(duration: Double?, interval: Double, grace: Double = 0.05,
                    onInterval: (IntervalReport) -> Void) throws(LanesError) -> LiveGenSummary {
        StopSignals.block()
        let stop = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
        stop.initialize(to: 0)
        defer { stop.deallocate() }
        var threads: [PinnedThread] = []
        let start = monotonicSeconds()
        let program = self.program, frame = UnsafeRawPointer(self.frame), frameBytes = self.frameBytes
        let batch = UInt32(self.batch)
        let chunk = unattached ? LiveGenerator.unattachedChunk : LiveGenerator.unpacedChunk
        for (i, l) in lanes.enumerated() {
            let counters = stats.counters(i)
            let cpu = l.core
            let sends = !l.plan.receiveOnly && !l.plan.streams.isEmpty
            let limit = sends ? (l.plan.count ?? .max) : 0
            let nsPerPacket = l.plan.pps.map { 1e9 / $0 } ?? 0
            do {
                threads.append(try PinnedThread(core: cpu, name: "xdpgen\(l.queue)") {
                    LiveGenerator.laneLoop(program: program, cpu: cpu, frame: frame, frameBytes: frameBytes, batch: batch,
                                           chunk: chunk, limit: limit, nsPerPacket: nsPerPacket, counters: counters, stop: stop)
                })
            } catch {
                stop.storeRelaxed(1)
                threads.forEach { $0.join() }
                throw error
            }
        }
        var previous = stats.snapshots(lanes.count)
        var finishedAt: Double? = nil
        var failure: (Int, Int32)? = nil
        let monitor = Monitor(duration: duration, interval: interval, poll: 0.02, watching: [interface])
        let exitReason = monitor.run(start: start, check: { now in
            let snaps = stats.snapshots(lanes.count)
            if let bad = snaps.firstIndex(where: { $0[.lastError] != 0 }) {
                failure = (bad, Int32(truncatingIfNeeded: snaps[bad][.lastError]))
                return .error
            }
            if finishedAt == nil && snaps.allSatisfy({ $0[.finished] == 1 }) { finishedAt = now }
            if let f = finishedAt, now - f >= grace { return .countReached }
            return nil
        }, tick: { elapsed, seconds in
            let cur = stats.snapshots(lanes.count)
            onInterval(IntervalReport(elapsed: elapsed, seconds: seconds, lanes: lanes.map { ($0.queue, $0.core) },
                                      previous: previous, current: cur))
            previous = cur
        })
        stop.storeRelaxed(1)
        threads.forEach { $0.join() }
        let elapsed = monotonicSeconds() - start
        if let (lane, e) = failure {
            throw LanesError.system("live-frames transmit on \(interface) (lane \(lanes[lane].queue), core \(lanes[lane].core))", errno: e,
                                    fix: e == ENXIO || e == EINVAL ? "the target cannot take redirected frames; use --tx xsk" : nil)
        }
        if exitReason == .interfaceLost {
            throw LanesError(monitor.lostInterface ?? Monitor.lost(interface), fix: "check 'ip link'; nothing is left attached")
        }
        return LiveGenSummary(durationS: elapsed, exitReason: exitReason, lanes: lanes.indices.map { i in
            let s = stats.counters(i).snapshot()
            return .init(queue: lanes[i].queue, core: lanes[i].core, txPackets: program.sent(cpu: lanes[i].core),
                         txBytes: program.bytes(cpu: lanes[i].core), calls: s[.bursts], firstTxNs: s[.firstTxNanos], lastTxNs: s[.lastTxNanos])
        })
    }

    /// One lane: as many frames as are due per BPF_PROG_RUN, sleeping until the
    /// next is due when paced. Counters are copied from the program's lane state.
    static func laneLoop(program: LiveFramesProgram, cpu: Int, frame: UnsafeRawPointer, frameBytes: Int, batch: UInt32,
                         chunk: UInt64, limit: UInt64, nsPerPacket: Double, counters: LaneCounters, stop: UnsafeMutablePointer<UInt64>) {
        var calls: UInt64 = 0
        var pacer = Pacer(pps: nsPerPacket > 0 ? 1e9 / nsPerPacket : nil)
        var noSpaceSince: UInt64 = 0 // the first of a run of ENOSPC answers (0: none)
        let minimum = nsPerPacket > 0 ? max(1, UInt64(LiveGenerator.pacedSliceNs / nsPerPacket)) : 1
        while stop.loadRelaxed() == 0 {
            let sent = program.sent(cpu: cpu)
            counters.set(.txPackets, sent)
            counters.set(.txBytes, program.bytes(cpu: cpu))
            if sent >= limit { counters.set(.finished, 1); break }
            var n = min(chunk, limit - sent)
            if nsPerPacket > 0 {
                // Paced: a call's worth at a time (`minimum`: about pacedSlice of frames, at
                // least 1; a call costs a few microseconds of set-up in the kernel, so one
                // frame per call would cap the rate far below the path's), up to two when
                // behind, which the pacer then spaces at twice the rate.
                let now = monotonicNanos()
                let want = min(minimum, n)
                let allowed = pacer.allowance(max: min(n, 2 * minimum), sent: sent, now: now)
                if allowed < want {
                    sleepUntil(nanos: min(pacer.wakeNs(sent: sent, want: want), now + 10_000_000))
                    continue
                }
                n = allowed
            }
            if calls == 0 { counters.set(.firstTxNanos, monotonicNanos()) }
            let r = program.run(frame: frame, size: frameBytes, repeat: UInt32(n), batch: batch)
            counters.set(.lastTxNanos, monotonicNanos())
            calls &+= 1
            counters.set(.bursts, calls)
            // ENOSPC: seen from BPF_PROG_RUN under many short paced calls (each call's
            // page pool is released asynchronously); it passes: wait a millisecond and
            // go on, for up to 2 s in a row before it counts as a failure.
            if r == -ENOSPC && noSpaceSince == 0 { noSpaceSince = monotonicNanos() }
            if r == -ENOSPC && monotonicNanos() - noSpaceSince < 2_000_000_000 { sleepUntil(nanos: monotonicNanos() + 1_000_000); continue }
            if r == 0 { noSpaceSince = 0 }
            if r < 0 { counters.set(.lastError, UInt64(-r)); break }
        }
        counters.set(.txPackets, program.sent(cpu: cpu))
        counters.set(.txBytes, program.bytes(cpu: cpu))
        if program.sent(cpu: cpu) >= limit { counters.set(.finished, 1) }
    }
}

/// What a live-frames run sent.
public struct LiveGenSummary: Sendable {
    public struct Lane: Sendable {
        public var queue: Int; public var core: Int; public var txPackets: UInt64; public var txBytes: UInt64; public var calls: UInt64
        /// CLOCK_MONOTONIC ns of the start of the lane's first call and the end of its latest (0: none).
        public var firstTxNs: UInt64; public var lastTxNs: UInt64
    }
    public var durationS: Double
    public var exitReason: ExitReason
    public var lanes: [Lane]
    public var txPackets: UInt64 { lanes.reduce(0) { $0 + $1.txPackets } }
    public var txBytes: UInt64 { lanes.reduce(0) { $0 + $1.txBytes } }
}

extension StatsArea {
    func snapshots(_ n: Int) -> [LaneSnapshot] { (0..<n).map { counters($0).snapshot() } }
}

/// Sleeps until an absolute CLOCK_MONOTONIC time, in nanoseconds.
func sleepUntil(nanos: UInt64) {
    var ts = timespec(tv_sec: Int(nanos / 1_000_000_000), tv_nsec: Int(nanos % 1_000_000_000))
    while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {}
}
