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

/// The writer thread of `lanes capture`: takes the lanes' filled slots, encodes
/// them as pcap or pcapng records into a 4 MiB buffer, writes it with one
/// write(2) when full (and when idle), and gives the slots back.
public final class CaptureWriter: @unchecked Sendable {
    let fd: Int32
    let format: PcapFormat
    let snaplen: UInt32
    public let lanes: [CaptureLane]
    var buffer: [UInt8] = []
    /// 1 once the lanes have stopped: drain and end. Stored by the main thread
    /// (release), loaded by the writer (acquire) before its last drain, so every
    /// slot the lanes handed over (their rings' own release/acquire) is written.
    let stop = Atomic<UInt32>(0)
    var thread: PinnedThread?
    /// The writer's burst of slots taken from a lane.
    let burst = UnsafeMutablePointer<FrameDesc>.allocate(capacity: 256)
    public private(set) var records: UInt64 = 0
    public private(set) var bytesWritten: UInt64 = 0
    /// The errno of a failed write (0: none); after one, records are counted as dropped.
    public private(set) var writeErrno: Int32 = 0
    public private(set) var droppedAfterError: UInt64 = 0
    static let flushBytes = 4 << 20

    /// Takes an open file descriptor; writes the file header at once.
    public init(fd: Int32, format: PcapFormat, snaplen: Int, lanes: [CaptureLane]) throws(LanesError) {
        self.fd = fd; self.format = format; self.snaplen = UInt32(snaplen); self.lanes = lanes
        buffer.reserveCapacity(Self.flushBytes + 128 + snaplen)
        Pcap.appendHeader(format, snaplen: UInt32(snaplen), to: &buffer)
        flush()
        if writeErrno != 0 { throw LanesError.system("write the capture file header", errno: writeErrno) }
    }

    /// Starts the thread (on `core`, -1: unpinned). Call after privileges are dropped.
    public func start(core: Int) throws(LanesError) {
        thread = try PinnedThread(core: core, name: "capture-writer") { [self] in
            while stop.load(ordering: .acquiring) == 0 {
                if drainOnce() == 0 {
                    if !buffer.isEmpty { flush() }
                    usleep(200)
                }
            }
            while drainOnce() > 0 {}
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
            while drainOnce() > 0 {}
            flush()
        }
    }

    deinit { burst.deallocate() }

    /// One pass over the lanes: returns how many records it took.
    func drainOnce() -> Int {
        var total = 0
        let b = burst
            for lane in lanes {
                let n = lane.full.dequeue(into: b, max: 256)
                for i in 0..<n {
                    let p = lane.slot(b[i].addr)
                    let ts = p.load(as: UInt64.self), orig = Int(p.load(fromByteOffset: 8, as: UInt64.self))
                    if writeErrno != 0 { droppedAfterError &+= 1; continue }
                    Pcap.appendRecord(format, timestampNanos: ts, originalLength: orig,
                                      data: UnsafeRawBufferPointer(start: p + CaptureLane.slotHeader, count: Int(b[i].len)),
                                      snaplen: snaplen, queue: lane.queue, to: &buffer)
                    records &+= 1
                    if buffer.count >= Self.flushBytes { flush() }
                }
                if n > 0 { _ = lane.free.enqueue(b, count: n) }
                total += n
            }
        return total
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
