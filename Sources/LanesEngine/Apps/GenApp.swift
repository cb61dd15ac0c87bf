import LanesCore
import LanesXDP
import LanesPacket

/// The payload signature every generated packet carries, right after the UDP
/// header, big-endian: magic "LN" (u16), stream id (u16), sequence (u32),
/// TX timestamp (u64, CLOCK_MONOTONIC ns). 16 bytes.
public enum Signature {
    public static let magic: UInt16 = 0x4c4e
    public static let length = 16
    /// Stream ids a receiver tracks when it is told of fewer flows: every id below
    /// max(flows, this). A signed packet of a higher id is counted as untracked.
    /// 4096 streams are 256 KiB per lane (AF_XDP) or per CPU (XDP).
    public static let trackedStreams = 4096
}

/// What one generator lane sends.
public struct GenLanePlan: Sendable {
    /// Global stream ids (indices into `flows`) this lane sends, in turn.
    public var streams: [Int]
    public var flows: [FlowKey]
    public var srcMAC: MACAddress
    public var dstMAC: MACAddress
    public var vlan: UInt16?
    /// Frame sizes in turn (one size, a list, or an IMIX pattern).
    public var sizes: [Int]
    /// Packets per second for this lane; nil = as fast as it can.
    public var pps: Double?
    /// Packets to send; nil = until stopped.
    public var count: UInt64?
    /// Count received signed packets (loss, reorder, duplicates, latency).
    public var receive: Bool
    /// Receive only: send nothing (the receiving end of a one-way measurement).
    public var receiveOnly = false
    /// Receiving: stream ids below max(flows, this) are counted per stream.
    public var trackedStreams = Signature.trackedStreams

    public init(streams: [Int], flows: [FlowKey], srcMAC: MACAddress, dstMAC: MACAddress, vlan: UInt16? = nil,
                sizes: [Int], pps: Double?, count: UInt64?, receive: Bool) {
        self.streams = streams; self.flows = flows; self.srcMAC = srcMAC; self.dstMAC = dstMAC; self.vlan = vlan
        self.sizes = sizes; self.pps = pps; self.count = count; self.receive = receive
    }
}

/// Per-stream receive state: counts and a 256-sequence window for duplicates and reordering.
public struct StreamRx: Sendable {
    public init() {}
    public var received: UInt64 = 0
    public var duplicates: UInt64 = 0
    public var reordered: UInt64 = 0
    public var highest: UInt64 = 0 // one past the highest sequence seen
    var window: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0) // bit i: sequence highest-1-i seen

    /// Moves the window up by `d` sequences (bit i becomes bit i+d), in registers:
    /// this runs for every received packet.
    @inline(__always)
    mutating func shift(_ d: UInt64) {
        if d >= 256 { window = (0, 0, 0, 0); return }
        let w = window
        let words = Int(d / 64), bits = d % 64
        @inline(__always) func at(_ k: Int) -> UInt64 {
            switch k { case 0: w.0; case 1: w.1; case 2: w.2; case 3: w.3; default: 0 }
        }
        @inline(__always) func word(_ i: Int) -> UInt64 {
            let high = at(i - words) << bits
            return bits == 0 ? high : high | at(i - words - 1) >> (64 - bits)
        }
        window = (word(0), word(1), word(2), word(3))
    }

    @inline(__always)
    func bit(_ i: UInt64) -> Bool {
        let word = i / 64, b = i % 64
        let w: UInt64 = word == 0 ? window.0 : word == 1 ? window.1 : word == 2 ? window.2 : window.3
        return (w >> b) & 1 == 1
    }

    @inline(__always)
    mutating func set(_ i: UInt64) {
        let word = i / 64, m: UInt64 = 1 << (i % 64)
        switch word { case 0: window.0 |= m; case 1: window.1 |= m; case 2: window.2 |= m; default: window.3 |= m }
    }

    /// Records one sequence number.
    public mutating func record(_ seq: UInt64) {
        if seq >= highest {
            shift(seq - highest + 1)
            set(0)
            highest = seq + 1
            received += 1
        } else {
            let i = highest - 1 - seq
            if i >= 256 {
                reordered += 1
                received += 1
            } else if bit(i) {
                duplicates += 1
            } else {
                set(i)
                reordered += 1
                received += 1
            }
        }
    }
}

/// A generator lane's pattern: its streams in turn, then the next size, so slot j
/// is stream `streams[j % streams]` at size `sizes[(j / streams) % sizes]`. Both
/// transmit paths (AF_XDP's GenApp and the live-frames program) send it.
public enum GenPattern {
    /// Bytes of each slot's template: the largest headers (Ethernet, VLAN, IPv6,
    /// UDP: 66) and the 16-byte signature fit; the rest of a frame is zero.
    public static let templateBytes = 128

    public static func slotCount(_ plan: GenLanePlan) -> Int { max(plan.streams.count, 1) * plan.sizes.count }

    /// Builds slot `j` of `plan`: its first `templateBytes` into `header` (sequence
    /// and timestamp zero, UDP checksum over a zero payload), using `scratch`
    /// (at least the largest size) for the whole frame.
    public static func build(_ plan: GenLanePlan, slot j: Int, into header: UnsafeMutableRawPointer,
                             scratch: UnsafeMutableRawPointer, scratchBytes: Int) -> GenFrame {
        let streams = plan.streams.isEmpty ? [0] : plan.streams
        let stream = streams[j % streams.count]
        let size = plan.sizes[(j / streams.count) % plan.sizes.count]
        let f = plan.flows[stream]
        var spec = FrameSpec(dstMAC: plan.dstMAC, srcMAC: plan.srcMAC, src: f.src, dst: f.dst, transport: 17,
                             srcPort: f.srcPort, dstPort: f.dstPort, frameLength: size)
        spec.vlan = plan.vlan
        scratch.initializeMemory(as: UInt8.self, repeating: 0, count: scratchBytes)
        let l4 = FrameBuilder.build(spec, into: scratch, fill: 0)!
        let sig = l4 + 8
        precondition(sig + Signature.length <= templateBytes, "headers and signature fit a template")
        scratch.storeBytes(of: Signature.magic.bigEndian, toByteOffset: sig, as: UInt16.self)
        scratch.storeBytes(of: UInt16(truncatingIfNeeded: stream).bigEndian, toByteOffset: sig + 2, as: UInt16.self)
        FrameBuilder.writeTransportChecksum(scratch, l3: l4 - (f.src.isV6 ? 40 : 20), l4: l4, length: size - l4, transport: 17, isV6: f.src.isV6)
        header.copyMemory(from: scratch, byteCount: templateBytes)
        return GenFrame(stream: UInt32(stream), length: UInt32(size), signature: UInt16(sig), checksum: UInt16(l4 + 6))
    }
}

/// One packet of the generator's pattern (a stream and a size), fixed when built.
public struct GenFrame: Sendable {
    public var stream: UInt32
    public var length: UInt32
    public var signature: UInt16 // offset of the signature in the frame
    public var checksum: UInt16  // offset of the UDP checksum
}

/// `lanes gen`: the pattern (streams in turn, then sizes in turn) is built once
/// into header templates; per packet the template's first `GenApp.templateBytes`
/// (headers and signature; the rest of a generator frame is always zero) are
/// copied into the most recently completed frame, which is still in cache, and
/// the sequence number, timestamp and UDP checksum (RFC 1624) are rewritten.
/// Frames are interchangeable, so the lane reuses the few that are hot instead of
/// cycling through all of them (a frame a few thousand packets old is a cache
/// miss on every packet). With `receive`, it also counts returning signed packets per stream.
public struct GenApp: LaneApp {
    /// Bytes of each template copied per packet.
    static let templateBytes = GenPattern.templateBytes
    public let plan: GenLanePlan
    /// The memory below: allocated once at init (sized from the plan), freed
    /// with the last copy of the app; `prepare` only fills it.
    let templateMemory: OwnedBuffer<UInt8>
    let frameMemory: OwnedBuffer<GenFrame>
    let sequenceMemory: OwnedBuffer<UInt64>
    let rxMemory: OwnedBuffer<StreamRx>
    /// The pattern: `slots` templates of `templateBytes`, and their facts.
    let templates: UnsafeMutableRawPointer
    let frameInfo: UnsafeMutablePointer<GenFrame>
    var slots = 0
    var nextSlot = 0
    let flowMemory: OwnedBuffer<FlowKey?>
    /// Next sequence per global stream (only this lane's streams are used).
    public let sequences: UnsafeMutablePointer<UInt64>
    /// Receive counts by the stream id in the signature, for `trackedStreams` ids
    /// (whatever this lane sends), and the flow of each stream's first packet.
    public let rx: UnsafeMutablePointer<StreamRx>
    public let rxFlows: UnsafeMutablePointer<FlowKey?>
    public let streamCount: Int
    public let trackedStreams: Int
    public var latency = LatencyHistogram()
    public private(set) var sent: UInt64 = 0
    /// Every signed packet received, `untrackedReceived` included.
    public private(set) var signedReceived: UInt64 = 0
    public private(set) var unsignedReceived: UInt64 = 0
    /// Signed packets of a stream id past `trackedStreams`.
    public private(set) var untrackedReceived: UInt64 = 0
    var pacer: Pacer
    /// When this lane sent its first and its latest burst (CLOCK_MONOTONIC ns; 0: none).
    public private(set) var firstSentNs: UInt64 = 0
    public private(set) var lastSentNs: UInt64 = 0
    let limit: UInt64

    public init(plan: GenLanePlan) {
        self.plan = plan
        streamCount = plan.flows.count
        sequenceMemory = OwnedBuffer(count: max(streamCount, 1), initial: 0)
        sequences = sequenceMemory.pointer
        trackedStreams = plan.receive ? max(streamCount, plan.trackedStreams) : 1
        rxMemory = OwnedBuffer(count: trackedStreams, initial: StreamRx())
        rx = rxMemory.pointer
        flowMemory = OwnedBuffer(count: trackedStreams, initial: nil)
        rxFlows = flowMemory.pointer
        let n = GenPattern.slotCount(plan)
        templateMemory = OwnedBuffer(count: n * GenApp.templateBytes, initial: 0, alignment: 64)
        templates = UnsafeMutableRawPointer(templateMemory.pointer)
        frameMemory = OwnedBuffer(count: n, initial: GenFrame(stream: 0, length: 0, signature: 0, checksum: 0))
        frameInfo = frameMemory.pointer

        pacer = Pacer(pps: plan.pps)
        limit = plan.count ?? .max
    }

    public func generatorFrames(of frameCount: Int) -> Int {
        plan.receiveOnly ? 0 : plan.receive ? frameCount / 2 : frameCount - 64
    }

    /// Builds the pattern's templates (every stream of the lane with every size:
    /// streams in turn, then the next size) and zeroes the generator frames.
    public mutating func prepare(generatorFrames: Range<Int>, context: LaneContext) {
        let n = GenPattern.slotCount(plan), t = templates, table = frameInfo
        let scratchBytes = max(context.frameSize, plan.sizes.max() ?? 0)
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: scratchBytes, alignment: 64)
        defer { scratch.deallocate() }
        for j in 0..<n {
            table[j] = GenPattern.build(plan, slot: j, into: t + j * GenApp.templateBytes, scratch: scratch, scratchBytes: scratchBytes)
        }
        // Past the template bytes a generator frame is zero for good: only
        // templates are ever written into these frames.
        (context.umem + generatorFrames.lowerBound * context.frameSize)
            .initializeMemory(as: UInt8.self, repeating: 0, count: generatorFrames.count * context.frameSize)
        slots = n
        nextSlot = 0
        pacer.reset()
        firstSentNs = 0
        lastSentNs = 0
    }

    @inline(__always)
    public mutating func budget(_ max: Int, now: UInt64) -> Int {
        var n = UInt64(max)
        if limit != .max { n = Swift.min(n, limit - sent) }
        return Int(pacer.allowance(max: n, sent: sent, now: now))
    }

    @inline(__always)
    public mutating func generate(_ burst: UnsafeMutablePointer<FrameDesc>, count: Int, now: UInt64, context: LaneContext) {
        if firstSentNs == 0 { firstSentNs = now }
        lastSentNs = now
        for i in 0..<count {
            let slot = nextSlot
            nextSlot = slot &+ 1 == slots ? 0 : slot &+ 1
            let g = frameInfo[slot]
            let p = context.umem + Int(burst[i].addr)
            p.copyMemory(from: templates + slot &* GenApp.templateBytes, byteCount: GenApp.templateBytes)
            let seq = UInt32(truncatingIfNeeded: sequences[Int(g.stream)])
            sequences[Int(g.stream)] &+= 1
            let sig = Int(g.signature), ck = Int(g.checksum)
            // RFC 1624 over the six 16-bit words that change from the template's
            // zeros: seq (2) and timestamp (4); m' = ~(~HC + sum of m').
            p.storeBytes(of: seq.bigEndian, toByteOffset: sig + 4, as: UInt32.self)
            p.storeBytes(of: now.bigEndian, toByteOffset: sig + 8, as: UInt64.self)
            var acc = UInt32(~UInt16(bigEndian: p.loadUnaligned(fromByteOffset: ck, as: UInt16.self)))
            acc &+= seq >> 16 &+ seq & 0xffff
            acc &+= UInt32(truncatingIfNeeded: now >> 48) &+ UInt32(truncatingIfNeeded: now >> 32) & 0xffff
            acc &+= UInt32(truncatingIfNeeded: now >> 16) & 0xffff &+ UInt32(truncatingIfNeeded: now) & 0xffff
            acc = (acc & 0xffff) &+ (acc >> 16)
            acc = (acc & 0xffff) &+ (acc >> 16)
            var c = ~UInt16(acc)
            if c == 0 { c = 0xffff }
            p.storeBytes(of: c.bigEndian, toByteOffset: ck, as: UInt16.self)
            burst[i].len = g.length
        }
        sent &+= UInt64(count)
    }

    public var finished: Bool { sent >= limit }

    /// A multi-buffer lane writes each packet into consecutive frames for this many bytes.
    public var largestPacket: Int { plan.receiveOnly ? 0 : plan.sizes.max() ?? 0 }

    /// Received packets: signed ones are counted per stream with their latency; all are recycled.
    public mutating func process(_ burst: UnsafeMutablePointer<FrameDesc>, count: Int, context: LaneContext) -> Int {
        guard plan.receive else {
            context.counters.add(.dropApp, UInt64(count))
            return 0
        }
        let now = monotonicNanos()
        for i in 0..<count {
            let d = burst[i]
            // A multi-buffer packet's headers and signature lie in its first buffer.
            let r = PacketParser.parse(head: UnsafeRawBufferPointer(start: context.umem + Int(d.addr), count: context.headLength(d)),
                                       length: Int(d.len), sum: nil)
            guard r.layers.contains(.udp), r.payloadLength >= Signature.length else { unsignedReceived &+= 1; continue }
            let p = context.umem + Int(d.addr) + r.payloadOffset
            guard UInt16(bigEndian: p.loadUnaligned(as: UInt16.self)) == Signature.magic else { unsignedReceived &+= 1; continue }
            signedReceived &+= 1
            let stream = Int(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: 2, as: UInt16.self)))
            guard stream < trackedStreams else { untrackedReceived &+= 1; continue }
            let seq = UInt64(UInt32(bigEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self)))
            let ts = UInt64(bigEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            if rx[stream].received | rx[stream].duplicates == 0 { rxFlows[stream] = FlowKey(r) }
            rx[stream].record(seq)
            if now >= ts { latency.record(now - ts) }
        }
        return 0
    }
}

