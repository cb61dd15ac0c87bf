import Glibc
import LanesCore
import LanesPacket
import LanesXDP
import Synchronization

/// One lane's capture slots and its two hand-off rings with the writer thread.
/// A slot holds a packet's first `snaplen` bytes after a 16-byte header (arrival
/// time in ns, original length). Slots travel as descriptors: `addr` is the
/// slot's index, `len` the bytes captured. `full` carries them lane -> writer,
/// `free` writer -> lane (both SPSCRing: one producer and one consumer each).
/// A lane with no free slot drops the packet from the capture and counts it
/// (`capture_dropped`); it never waits for the writer.
public final class CaptureLane: @unchecked Sendable {
    public static let slotHeader = 16
    let slots: UnsafeMutableRawPointer
    let stride: Int
    public let slotCount: Int
    public let queue: UInt32
    let full: SPSCRing
    let free: SPSCRing

    /// `slotCount` a power of two; `snaplen` bytes kept of each packet.
    public init(queue: UInt32, slotCount: Int, snaplen: Int) {
        self.queue = queue
        self.slotCount = slotCount
        stride = (Self.slotHeader + snaplen + 63) & ~63
        slots = .allocate(byteCount: slotCount * stride, alignment: 64)
        full = SPSCRing(capacity: slotCount)
        free = SPSCRing(capacity: slotCount)
        // Before either thread starts (thread creation orders these writes first).
        var d = FrameDesc(addr: 0, len: 0)
        for i in 0..<slotCount {
            d.addr = UInt64(i)
            _ = free.enqueue(&d, count: 1)
        }
    }

    deinit { slots.deallocate() }

    @inline(__always) func slot(_ i: UInt64) -> UnsafeMutableRawPointer { slots + Int(i) &* stride }
}

/// What every capture lane shares: the time base and the packet limit.
public final class CaptureShared: @unchecked Sendable {
    /// CLOCK_REALTIME minus CLOCK_MONOTONIC at the start: a packet's time is its
    /// monotonic arrival plus this, so times never step backwards within a lane.
    public let realtimeOffsetNs: UInt64
    /// Packets to capture in all (nil: no limit).
    public let limit: UInt64?
    /// Packets taken so far by every lane (only with a limit): a lane reserves a
    /// burst's worth with one relaxed add; the ordering of the packets themselves
    /// goes through the rings.
    let taken = Atomic<UInt64>(0)

    public init(limit: UInt64?) {
        self.limit = limit
        var rt = timespec()
        clock_gettime(CLOCK_REALTIME, &rt)
        let real = UInt64(rt.tv_sec) * 1_000_000_000 + UInt64(rt.tv_nsec)
        realtimeOffsetNs = real &- monotonicNanos()
    }

    public var reachedLimit: Bool { limit.map { taken.load(ordering: .relaxed) >= $0 } ?? false }
}

/// `lanes capture`: copies each received packet's first `snaplen` bytes into a
/// free capture slot, stamps it once per burst, and hands the slots to the writer
/// thread; every frame goes straight back to the fill ring.
public struct CaptureApp: LaneApp {
    let lane: CaptureLane
    let shared: CaptureShared
    let snaplen: Int
    /// `cache` and `out`, freed with the last copy of the app.
    let memory: OwnedBuffer<FrameDesc>
    /// Free slots taken from the writer in bursts, used from the top.
    let cache: UnsafeMutablePointer<FrameDesc>
    var cached = 0
    /// The burst's slots, handed to the writer at its end.
    let out: UnsafeMutablePointer<FrameDesc>
    static let cacheSize = 256
    /// Packets this lane handed to the writer.
    public private(set) var captured: UInt64 = 0

    public init(lane: CaptureLane, shared: CaptureShared, snaplen: Int) {
        self.lane = lane; self.shared = shared; self.snaplen = snaplen
        memory = OwnedBuffer(count: 2 * Self.cacheSize, initial: FrameDesc(addr: 0, len: 0))
        cache = memory.pointer
        out = memory.pointer + Self.cacheSize
    }

    public var finished: Bool { shared.reachedLimit }

    public mutating func process(_ burst: UnsafeMutablePointer<FrameDesc>, count: Int, context: LaneContext) -> Int {
        var wanted = count
        if let limit = shared.limit {
            let before = shared.taken.add(UInt64(count), ordering: .relaxed).oldValue
            wanted = before >= limit ? 0 : Int(min(UInt64(count), limit - before))
        }
        let now = monotonicNanos() &+ shared.realtimeOffsetNs
        var n = 0
        for i in 0..<min(wanted, Self.cacheSize) {
            if cached == 0 {
                cached = lane.free.dequeue(into: cache, max: Self.cacheSize)
                if cached == 0 { break }
            }
            cached &-= 1
            var s = cache[cached]
            let d = burst[i]
            let p = lane.slot(s.addr)
            let keep = min(Int(d.len), snaplen)
            p.storeBytes(of: now, as: UInt64.self)
            p.storeBytes(of: UInt64(d.len), toByteOffset: 8, as: UInt64.self)
            if keep <= context.headLength(d) {
                (p + CaptureLane.slotHeader).copyMemory(from: context.bytes(d), byteCount: keep)
            } else {
                // A multi-buffer packet: its buffers in order, up to the snap length.
                var at = 0
                context.forEachBuffer(d) { b in
                    let n = min(b.count, keep - at)
                    if n > 0 { (p + CaptureLane.slotHeader + at).copyMemory(from: b.baseAddress!, byteCount: n) }
                    at += n
                }
            }
            s.len = UInt32(keep)
            out[n] = s
            n &+= 1
        }
        // The full ring has room for every slot, so all of them go in.
        if n > 0 { _ = lane.full.enqueue(out, count: n) }
        captured &+= UInt64(n)
        if wanted > n { context.counters.add(.dropCapture, UInt64(wanted - n)) }
        return 0
    }
}

/// The writer thread of `lanes capture`: takes the lanes' filled slots, merges
/// them into one time order, encodes them as pcap or pcapng records into a 4 MiB
/// buffer, writes it with one write(2) when full (and when idle), and gives the
/// slots back.
///
/// The merge: each lane's records arrive in its own time order, so the writer
/// keeps the slots it took from each lane in a queue of its own and always writes
/// the earliest head among them. That head is safe to write once every lane has a
/// record waiting (nothing earlier can come), or once it is `mergeWindowNs` old
/// (a lane that has shown nothing for that long is taken to have nothing earlier),
/// or when a lane's queue holds half its slots (its lane must not run dry of free
/// slots). A record that arrives after a later one was written (a lane held up for
/// longer than the window) is still written, and counted in `lateRecords`.
public final class CaptureWriter: @unchecked Sendable {
    /// How long the earliest record waits for the other lanes' earlier ones.
    public static let mergeWindowNs: UInt64 = 10_000_000
    let fd: Int32
    let format: PcapFormat
    let snaplen: UInt32
    public let lanes: [CaptureLane]
    /// The clock the lanes stamp with (their packets' times): the window is on it.
    let clock: CaptureShared
    var buffer: [UInt8] = []
    /// 1 once the lanes have stopped: drain and end. Stored by the main thread
    /// (release), loaded by the writer (acquire) before its last drain, so every
    /// slot the lanes handed over (their rings' own release/acquire) is written.
    let stop = Atomic<UInt32>(0)
    var thread: PinnedThread?
    /// The writer's burst of slots taken from a lane.
    let burst = UnsafeMutablePointer<FrameDesc>.allocate(capacity: 256)
    /// Per lane: the slots taken and not yet written (a queue of slotCount), and
    /// the slots written and not yet given back (at most 256 between hand-backs).
    let waiting: [UnsafeMutablePointer<FrameDesc>]
    var waitingHead: [Int]
    var waitingCount: [Int]
    let written: [UnsafeMutablePointer<FrameDesc>]
    var writtenCount: [Int]
    var lastWrittenNs: UInt64 = 0
    public private(set) var records: UInt64 = 0
    public private(set) var bytesWritten: UInt64 = 0
    /// Records written after a record with a later time (they came later than the window).
    public private(set) var lateRecords: UInt64 = 0
    /// The errno of a failed write (0: none); after one, records are counted as dropped.
    public private(set) var writeErrno: Int32 = 0
    public private(set) var droppedAfterError: UInt64 = 0
    static let flushBytes = 4 << 20

    /// Takes an open file descriptor; writes the file header at once. `clock`:
    /// what the lanes share (their time base).
    public init(fd: Int32, format: PcapFormat, snaplen: Int, lanes: [CaptureLane], clock: CaptureShared) throws(LanesError) {
        self.fd = fd; self.format = format; self.snaplen = UInt32(snaplen); self.lanes = lanes; self.clock = clock
        waiting = lanes.map { .allocate(capacity: $0.slotCount) }
        waitingHead = lanes.map { _ in 0 }
        waitingCount = lanes.map { _ in 0 }
        written = lanes.map { _ in .allocate(capacity: 256) }
        writtenCount = lanes.map { _ in 0 }
        buffer.reserveCapacity(Self.flushBytes + 128 + snaplen)
        Pcap.appendHeader(format, snaplen: UInt32(snaplen), to: &buffer)
        flush()
        if writeErrno != 0 { throw LanesError.system("write the capture file header", errno: writeErrno) }
    }

    /// Starts the thread (on `core`, -1: unpinned). Call after privileges are dropped.
    public func start(core: Int) throws(LanesError) {
        thread = try PinnedThread(core: core, name: "capture-writer") { [self] in
            while stop.load(ordering: .acquiring) == 0 {
                if drainOnce(final: false) == 0 {
                    if !buffer.isEmpty { flush() }
                    usleep(200)
                }
            }
            while drainOnce(final: true) > 0 {}
            flush()
        }
    }

    /// Ends the thread after the lanes stopped; everything handed over is written.
    public func finish() {
        if let t = thread {
            stop.store(1, ordering: .releasing)
            t.join()
            thread = nil
        } else {
            while drainOnce(final: true) > 0 {}
            flush()
        }
    }

    deinit {
        burst.deallocate()
        for p in waiting { p.deallocate() }
        for p in written { p.deallocate() }
    }

    @inline(__always) func time(_ lane: Int, _ d: FrameDesc) -> UInt64 { lanes[lane].slot(d.addr).load(as: UInt64.self) }

    /// One pass: takes what the lanes handed over, writes what the merge allows
    /// (`final`: everything; the lanes have stopped), gives written slots back.
    /// Returns how many records it took or wrote.
    func drainOnce(final: Bool) -> Int {
        var total = 0
        for (l, lane) in lanes.enumerated() {
            let n = lane.full.dequeue(into: burst, max: min(256, lane.slotCount - waitingCount[l]))
            for i in 0..<n { waiting[l][(waitingHead[l] + waitingCount[l] + i) & (lane.slotCount - 1)] = burst[i] }
            waitingCount[l] += n
            total += n
        }
        let now = monotonicNanos() &+ clock.realtimeOffsetNs
        while true {
            // The earliest head, and whether every lane has one.
            var best = -1, bestNs = UInt64.max, everyLane = true, pressed = false
            for l in lanes.indices {
                guard waitingCount[l] > 0 else { everyLane = false; continue }
                let t = time(l, waiting[l][waitingHead[l]])
                if t < bestNs { best = l; bestNs = t }
                if waitingCount[l] >= lanes[l].slotCount / 2 { pressed = true }
            }
            guard best >= 0, final || everyLane || pressed || bestNs &+ Self.mergeWindowNs <= now else { break }
            let d = waiting[best][waitingHead[best]]
            waitingHead[best] = (waitingHead[best] + 1) & (lanes[best].slotCount - 1)
            waitingCount[best] -= 1
            write(lane: best, d, at: bestNs)
            written[best][writtenCount[best]] = d
            writtenCount[best] += 1
            if writtenCount[best] == 256 { giveBack(best) }
            total += 1
        }
        for l in lanes.indices where writtenCount[l] > 0 { giveBack(l) }
        return total
    }

    func giveBack(_ l: Int) {
        _ = lanes[l].free.enqueue(written[l], count: writtenCount[l])
        writtenCount[l] = 0
    }

    func write(lane l: Int, _ d: FrameDesc, at ts: UInt64) {
        if writeErrno != 0 { droppedAfterError &+= 1; return }
        if ts < lastWrittenNs { lateRecords &+= 1 } else { lastWrittenNs = ts }
        let p = lanes[l].slot(d.addr)
        Pcap.appendRecord(format, timestampNanos: ts, originalLength: Int(p.load(fromByteOffset: 8, as: UInt64.self)),
                          data: UnsafeRawBufferPointer(start: p + CaptureLane.slotHeader, count: Int(d.len)),
                          snaplen: snaplen, queue: lanes[l].queue, to: &buffer)
        records &+= 1
        if buffer.count >= Self.flushBytes { flush() }
    }

    func flush() {
        var off = 0
        while off < buffer.count && writeErrno == 0 {
            let w = buffer.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            if w < 0 {
                if errno == EINTR { continue }
                writeErrno = errno
            } else {
                off += w
            }
        }
        bytesWritten &+= UInt64(off)
        buffer.removeAll(keepingCapacity: true)
    }
}
