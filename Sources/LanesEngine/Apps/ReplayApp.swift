import LanesCore
import LanesPacket
import Synchronization

/// A capture loaded once for `lanes replay`: every packet's bytes back to back in
/// one buffer, with its offset, length and time since the first packet. MACs are
/// rewritten here, at load, never on the send path.
public final class ReplayTrace: @unchecked Sendable {
    let bytes: UnsafeMutableRawPointer
    let offsets: UnsafeMutablePointer<Int>
    let lengths: UnsafeMutablePointer<UInt32>
    /// ns since the first packet (a clock that steps back in the file counts as 0 gap).
    let times: UnsafeMutablePointer<UInt64>
    /// Bytes of the packets before each one in the file (a rate in bits per second
    /// schedules packet i at its bytes before, over the rate).
    let bytesBefore: UnsafeMutablePointer<UInt64>
    public let count: Int
    public let totalBytes: Int
    /// From the first packet to the last.
    public let spanNs: UInt64
    /// The gap added between one pass of the file and the next (original timing):
    /// the mean gap between its packets.
    public let loopGapNs: UInt64

    public init(_ records: [PcapRecord], srcMAC: MACAddress? = nil, dstMAC: MACAddress? = nil) {
        count = records.count
        totalBytes = records.reduce(0) { $0 + $1.data.count }
        let bytes = UnsafeMutableRawPointer.allocate(byteCount: max(totalBytes, 1), alignment: 64)
        let offsets = UnsafeMutablePointer<Int>.allocate(capacity: max(count, 1))
        let lengths = UnsafeMutablePointer<UInt32>.allocate(capacity: max(count, 1))
        let times = UnsafeMutablePointer<UInt64>.allocate(capacity: max(count, 1))
        let bytesBefore = UnsafeMutablePointer<UInt64>.allocate(capacity: max(count, 1))
        var o = 0, t: UInt64 = 0
        let first = records.first?.timestampNanos ?? 0
        var last = first
        for (i, r) in records.enumerated() {
            r.data.withUnsafeBytes { (bytes + o).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            if r.data.count >= 12 {
                if let d = dstMAC { for (k, b) in d.array.enumerated() { bytes.storeBytes(of: b, toByteOffset: o + k, as: UInt8.self) } }
                if let s = srcMAC { for (k, b) in s.array.enumerated() { bytes.storeBytes(of: b, toByteOffset: o + 6 + k, as: UInt8.self) } }
            }
            offsets[i] = o
            bytesBefore[i] = UInt64(o)
            lengths[i] = UInt32(r.data.count)
            if r.timestampNanos > last { t += r.timestampNanos - last; last = r.timestampNanos }
            times[i] = t
            o += r.data.count
        }
        (self.bytes, self.offsets, self.lengths, self.times, self.bytesBefore) = (bytes, offsets, lengths, times, bytesBefore)
        spanNs = t
        loopGapNs = count > 1 ? t / UInt64(count - 1) : 0
    }

    deinit {
        bytes.deallocate(); offsets.deallocate(); lengths.deallocate(); times.deallocate(); bytesBefore.deallocate()
    }

    /// The lane of each packet: a flow's packets on one lane, in file order. IP
    /// packets with ports hash their 5-tuple (Toeplitz); fragments and IP without
    /// ports hash their addresses, so a datagram's fragments stay together and in
    /// order; everything else goes to lane 0.
    public static func lane(of data: [UInt8], lanes: Int) -> Int {
        guard lanes > 1 else { return 0 }
        let r = data.withUnsafeBytes { PacketParser.parse($0) }
        let fragment = r.moreFragments || r.fragmentOffset != 0
        let t = Toeplitz()
        if !fragment, let f = FlowKey(r) { return Int(t.hash(f) % UInt32(lanes)) }
        if r.layers.contains(.ipv4) {
            return Int(t.hash(FlowKey(src: .v4(IPv4Address(r.ipv4Src)), dst: .v4(IPv4Address(r.ipv4Dst)), srcPort: 0, dstPort: 0), withPorts: false) % UInt32(lanes))
        }
        if r.layers.contains(.ipv6) {
            return Int(t.hash(FlowKey(src: .v6(r.ipv6Src), dst: .v6(r.ipv6Dst), srcPort: 0, dstPort: 0), withPorts: false) % UInt32(lanes))
        }
        return 0
    }
}

/// How a replay is timed.
public enum ReplayTiming: Sendable, Equatable {
    /// The file's own gaps divided by `speed` (1: as captured).
    case original(speed: Double)
    /// A fixed rate in packets per second, over all lanes.
    case pps(Double)
    /// A fixed rate in bits per second of frames (without FCS), over all lanes.
    case bps(Double)
    /// As fast as the lanes go.
    case topspeed
}

/// The one schedule every replay lane keeps to. The file is one sequence: packet
/// i of pass p is global packet p x count + i, due at its file time divided by the
/// speed, at g / rate (--rate in pps), or at its bytes before over the rate (in
/// bps), from a start the first lane to send sets. With `ordered` (every timed
/// replay), a lane also sends no packet before every earlier packet of the file
/// has gone out: each lane publishes the global index of its next unsent packet
/// once its previous burst is on the TX ring and kicked, and sends only packets
/// below every other lane's. So the wire sees the file's order even where two
/// lanes' clocks disagree by more than the gap between packets; --topspeed drops
/// that (flows may interleave differently), and each flow's order holds always,
/// since a flow stays on one lane.
public final class ReplaySchedule: @unchecked Sendable {
    /// 0 until set; set once with a compare-exchange (acquiring-and-releasing), read with acquire.
    let startNs = Atomic<UInt64>(0)
    public let ordered: Bool
    public let lanes: Int
    /// Lane l's next unsent global packet at [l x 8] (one cache line each; .max: none
    /// left). Stored only by lane l, with release after the kick of its previous
    /// burst; loaded by the other lanes with acquire (a packet below it has gone out).
    let progressMemory: OwnedBuffer<UInt64>
    let progress: UnsafeMutablePointer<UInt64>

    /// `first[l]`: lane l's first global packet (.max: it sends none), in place
    /// before any lane starts (thread creation orders these stores first).
    public init(first: [UInt64], ordered: Bool) {
        lanes = first.count
        self.ordered = ordered
        progressMemory = OwnedBuffer(count: max(first.count, 1) * 8, initial: .max, alignment: 64)
        progress = progressMemory.pointer
        for (l, g) in first.enumerated() { progress[l * 8] = g }
    }

    func start(_ now: UInt64) -> UInt64 {
        let (exchanged, original) = startNs.compareExchange(expected: 0, desired: now, ordering: .acquiringAndReleasing)
        return exchanged ? now : original
    }

    @inline(__always) func publish(lane: Int, next: UInt64) { (progress + lane &* 8).storeRelease(next) }

    /// The earliest unsent packet of every lane but `lane`.
    @inline(__always) func earliest(besides lane: Int) -> UInt64 {
        var m = UInt64.max
        for l in 0..<lanes where l != lane { m = Swift.min(m, (progress + l &* 8).loadAcquire()) }
        return m
    }
}

/// One replay lane: sends its packets of the trace (`indices`, file order) for
/// `total` packets (passes of the file, cut by `--count`), each copied whole into
/// a generator frame, at the times and in the order of the shared schedule.
public struct ReplayApp: LaneApp {
    let trace: ReplayTrace
    /// Freed with the last copy of the app.
    let indexMemory: OwnedBuffer<Int32>
    let indices: UnsafeMutablePointer<Int32>
    let perPass: Int
    public let total: UInt64
    let timing: ReplayTiming
    let schedule: ReplaySchedule
    let lane: Int
    /// ns of one pass of the file at speed 1 (span plus the gap to the next pass).
    let passNs: UInt64
    /// The global packet this lane last published as its next (ordered schedules).
    var published: UInt64 = 0
    var startNs: UInt64 = 0
    public private(set) var sent: UInt64 = 0
    public private(set) var sentBytes: UInt64 = 0
    public private(set) var firstSentNs: UInt64 = 0
    public private(set) var lastSentNs: UInt64 = 0

    /// `indices`: this lane's packets in file order; `total`: packets it sends in all.
    public init(trace: ReplayTrace, indices: [Int32], total: UInt64, timing: ReplayTiming, schedule: ReplaySchedule, lane: Int) {
        self.trace = trace
        perPass = indices.count
        indexMemory = OwnedBuffer(count: indices.count, initial: 0)
        self.indices = indexMemory.pointer
        for (i, v) in indices.enumerated() { self.indices[i] = v }
        self.total = indices.isEmpty ? 0 : total
        self.timing = timing
        self.schedule = schedule
        self.lane = lane
        passNs = trace.spanNs + trace.loopGapNs
    }

    /// Lane `lane`'s first global packet (what the schedule starts from): .max when it sends none.
    public static func firstPacket(indices: [Int32], total: UInt64) -> UInt64 {
        guard let first = indices.first, total > 0 else { return .max }
        return UInt64(first)
    }

    public func generatorFrames(of frameCount: Int) -> Int { frameCount - 64 }

    public mutating func prepare(generatorFrames: Range<Int>, context: LaneContext) {
        sent = 0
        startNs = 0
        published = ReplayApp.firstPacket(indices: (0..<perPass).map { indices[$0] }, total: total)
    }

    /// Packet `k` of this lane: its global index in the file's sequence and its file index.
    @inline(__always)
    func packet(_ k: UInt64) -> (global: UInt64, index: Int) {
        let pass = k / UInt64(perPass), i = Int(indices[Int(k % UInt64(perPass))])
        return (pass &* UInt64(trace.count) &+ UInt64(i), i)
    }

    /// When packet `k` of this lane is due, in ns after the start.
    @inline(__always)
    func due(_ k: UInt64) -> UInt64 {
        let (g, i) = packet(k)
        switch timing {
        case .original(let speed):
            return UInt64(Double((g / UInt64(trace.count)) &* passNs &+ trace.times[i]) / speed)
        case .pps(let p):
            return UInt64(Double(g) * 1e9 / p)
        case .bps(let b):
            return UInt64(Double((g / UInt64(trace.count)) &* UInt64(trace.totalBytes) &+ trace.bytesBefore[i]) * 8e9 / b)
        case .topspeed:
            return 0
        }
    }

    @inline(__always)
    public mutating func budget(_ max: Int, now: UInt64) -> Int {
        let left = total - sent
        let n = Swift.min(UInt64(max), left)
        // Everything this lane handed over so far is out (its burst was kicked
        // before this turn): say where it stands, once per change.
        if schedule.ordered {
            let next = n == 0 ? UInt64.max : packet(sent).global
            if next != published { published = next; schedule.publish(lane: lane, next: next) }
        }
        if n == 0 { return 0 }
        if case .topspeed = timing { return Int(n) }
        if startNs == 0 { startNs = schedule.start(now) }
        let elapsed = now &- startNs
        let bound = schedule.ordered ? schedule.earliest(besides: lane) : .max
        var k: UInt64 = 0
        while k < n && due(sent &+ k) <= elapsed && packet(sent &+ k).global < bound { k &+= 1 }
        return Int(k)
    }

    @inline(__always)
    public mutating func generate(_ burst: UnsafeMutablePointer<FrameDesc>, count: Int, now: UInt64, context: LaneContext) {
        if firstSentNs == 0 { firstSentNs = now }
        lastSentNs = now
        var k = Int(sent % UInt64(perPass))
        for i in 0..<count {
            let p = Int(indices[k])
            let len = trace.lengths[p]
            context.bytes(burst[i]).copyMemory(from: trace.bytes + trace.offsets[p], byteCount: Int(len))
            burst[i].len = len
            sentBytes &+= UInt64(len)
            k &+= 1
            if k == perPass { k = 0 }
        }
        sent &+= UInt64(count)
    }

    public var finished: Bool { sent >= total }

    /// A multi-buffer lane gives each packet enough consecutive frames for the trace's longest.
    public var largestPacket: Int { (0..<trace.count).reduce(0) { max($0, Int(trace.lengths[$1])) } }

    /// Replay sends only (`lanes replay` attaches no program); anything received is counted and recycled.
    public mutating func process(_ burst: UnsafeMutablePointer<FrameDesc>, count: Int, context: LaneContext) -> Int {
        context.counters.add(.dropApp, UInt64(count))
        return 0
    }
}
