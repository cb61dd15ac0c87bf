import Glibc
import LanesCore
import LanesXDP

/// AF_XDP rings and a UMEM in plain memory, with a fake kernel side: it takes
/// frames from the fill ring and produces RX descriptors (copying a template
/// packet, as copy mode does), and consumes TX descriptors into completions.
/// The lane loop runs over it unchanged: this is how the loop is tested without
/// root and measured without the kernel's cost (Benchmarks/).
public final class InMemoryPort {
    public let size: UInt32
    public let frameSize: Int
    public let frameCount: Int
    public let umem: UnsafeMutableRawPointer
    /// The rings, laid out as the kernel's; the lane works them through the views `takeRings` hands it.
    public let memory: MemoryRings
    @usableFromInline let words: UnsafeMutablePointer<UInt32> // producer, consumer, flags x 4 rings
    @usableFromInline let rxDescs, txDescs: UnsafeMutablePointer<FrameDesc>
    @usableFromInline let fillAddrs, compAddrs: UnsafeMutablePointer<UInt64>
    @usableFromInline @exclusivity(unchecked) var template: [UInt8] = []
    @usableFromInline @exclusivity(unchecked) var packetLength: UInt32 = 0
    @usableFromInline @exclusivity(unchecked) var copyTemplate = true

    /// Word slots: 0-2 rx, 3-5 tx, 6-8 fill, 9-11 completion (producer, consumer, flags).
    public init(ringSize: Int = 2048, frameSize: Int = 2048, frameCount: Int = 4096) {
        memory = MemoryRings(size: ringSize)
        size = memory.size
        self.frameSize = frameSize
        self.frameCount = frameCount
        umem = .allocate(byteCount: frameSize * frameCount, alignment: 4096)
        umem.initializeMemory(as: UInt8.self, repeating: 0, count: frameSize * frameCount)
        words = memory.words
        rxDescs = memory.rxDescs; txDescs = memory.txDescs
        fillAddrs = memory.fillAddrs; compAddrs = memory.compAddrs
    }

    deinit { umem.deallocate() }

    /// Views for the one lane over these rings (taken once).
    public func takeRings() -> LaneRings { memory.takeLaneRings() }
    /// Frames on the fill ring at set-up, before the lane takes the rings.
    public func primeFill(frames: Range<Int>) -> Int { memory.primeFill(frames: frames, frameSize: frameSize) }

    /// The packet the fake kernel "receives", copied into each frame as copy-mode
    /// AF_XDP does; with `copy: false` only its length goes into the descriptors
    /// (the frames keep whatever bytes they hold: zero-copy's cost model).
    public func setTemplate(_ bytes: [UInt8], copy: Bool = true) {
        template = bytes
        packetLength = UInt32(bytes.count)
        copyTemplate = copy
    }

    /// Kernel side of RX: up to `count` packets from fill-ring frames onto the RX ring.
    @inlinable @discardableResult
    public func kernelReceive(_ count: Int) -> Int {
        let mask = size - 1
        let w = words
        let fillAvail = Int(w[6] &- w[7])
        let rxRoom = Int(size &- (w[0] &- w[1]))
        let n = min(count, fillAvail, rxRoom)
        guard n > 0 else { return 0 }
        let len = packetLength
        var fc = w[7], rp = w[0]
        let fillAddrs = self.fillAddrs, rxDescs = self.rxDescs
        if copyTemplate && !template.isEmpty {
            let umem = self.umem
            template.withUnsafeBytes { t in
                for _ in 0..<n {
                    let addr = fillAddrs[Int(fc & mask)]
                    memcpy(umem + Int(addr), t.baseAddress!, t.count)
                    rxDescs[Int(rp & mask)] = FrameDesc(addr: addr, len: len, options: 0)
                    fc &+= 1; rp &+= 1
                }
            }
        } else {
            for _ in 0..<n {
                rxDescs[Int(rp & mask)] = FrameDesc(addr: fillAddrs[Int(fc & mask)], len: len, options: 0)
                fc &+= 1; rp &+= 1
            }
        }
        w[7] = fc // fill consumer
        w[0] = rp // rx producer
        return n
    }

    /// Kernel side of TX: every TX descriptor "sent" and completed. Returns how
    /// many; `inspect` sees each sent packet's bytes.
    @inlinable @discardableResult
    public func kernelTransmit(_ inspect: ((UnsafeRawBufferPointer) -> Void)? = nil) -> Int {
        let mask = size - 1
        let pending = Int(words[3] &- words[4])
        let room = Int(size &- (words[9] &- words[10]))
        let n = min(pending, room)
        var tc = words[4], cp = words[9]
        for _ in 0..<n {
            let d = txDescs[Int(tc & mask)]
            inspect?(UnsafeRawBufferPointer(start: umem + Int(d.addr), count: Int(d.len)))
            compAddrs[Int(cp & mask)] = d.addr
            tc &+= 1; cp &+= 1
        }
        words[4] = tc
        words[9] = cp
        return n
    }

    /// RX descriptors written but not yet published (`kernelReceive(packet:...)`).
    @usableFromInline @exclusivity(unchecked) var unpublished: UInt32 = 0

    /// Kernel side of multi-buffer RX: `packet` cut into buffers of `segment`
    /// bytes, one fill-ring frame each, XDP_PKT_CONTD on all but the last.
    /// `edit` may change the descriptors first (tests: invalid ones); only the
    /// first `publish` of them become visible now, the rest with `publishPending()`
    /// (a packet the kernel is still writing). False when a ring has no room.
    @discardableResult
    public func kernelReceive(packet: [UInt8], segment: Int, publish: Int? = nil, edit: ((inout [FrameDesc]) -> Void)? = nil) -> Bool {
        let mask = size - 1, w = words
        let frames = max(1, (packet.count + segment - 1) / segment)
        guard Int(w[6] &- w[7]) >= frames, Int(size &- (w[0] &+ unpublished &- w[1])) >= frames else { return false }
        var descs: [FrameDesc] = []
        var fc = w[7]
        packet.withUnsafeBytes { t in
            for k in 0..<frames {
                let addr = fillAddrs[Int(fc & mask)]
                fc &+= 1
                let off = k * segment, len = min(segment, packet.count - off)
                if len > 0 { memcpy(umem + Int(addr), t.baseAddress! + off, len) }
                descs.append(FrameDesc(addr: addr, len: UInt32(len), options: k < frames - 1 ? FrameDesc.continues : 0))
            }
        }
        edit?(&descs)
        var rp = w[0] &+ unpublished
        for d in descs {
            rxDescs[Int(rp & mask)] = FrameDesc(addr: d.addr, len: d.len, options: d.options)
            rp &+= 1
        }
        w[7] = fc
        let now = UInt32(min(publish ?? descs.count, descs.count))
        unpublished &+= UInt32(descs.count)
        w[0] &+= now
        unpublished &-= now
        return true
    }

    /// Publishes the RX descriptors `kernelReceive(packet:publish:)` held back.
    public func publishPending() {
        words[0] &+= unpublished
        unpublished = 0
    }

    /// Kernel side of multi-buffer TX: every TX descriptor sent and completed;
    /// `packet` sees each packet whole (its buffers joined, as the wire would) and how many buffers it had.
    /// A full completion ring can stop it inside a packet: the rest comes with the next call.
    @discardableResult
    public func kernelTransmitPackets(_ packet: ([UInt8], Int) -> Void) -> Int {
        kernelTransmitDescriptors { d in
            txPartial.append(contentsOf: UnsafeRawBufferPointer(start: umem + Int(d.addr), count: Int(d.len)))
            txPartialBuffers += 1
            if d.options & FrameDesc.continues == 0 {
                packet(txPartial, txPartialBuffers)
                txPartial.removeAll(keepingCapacity: true)
                txPartialBuffers = 0
            }
        }
    }
    var txPartial: [UInt8] = []
    var txPartialBuffers = 0

    /// Kernel side of TX, descriptor by descriptor.
    @discardableResult
    public func kernelTransmitDescriptors(_ each: (FrameDesc) -> Void) -> Int {
        let mask = size - 1
        let n = min(Int(words[3] &- words[4]), Int(size &- (words[9] &- words[10])))
        var tc = words[4], cp = words[9]
        for _ in 0..<n {
            let d = txDescs[Int(tc & mask)]
            each(FrameDesc(addr: d.addr, len: d.len, options: d.options))
            compAddrs[Int(cp & mask)] = d.addr
            tc &+= 1; cp &+= 1
        }
        words[4] = tc
        words[9] = cp
        return n
    }

    /// Frames the "kernel" holds: fill ring, RX ring, TX ring, completion ring.
    public var occupancy: (fill: Int, rx: Int, tx: Int, completion: Int) {
        (Int(words[6] &- words[7]), Int(words[0] &+ unpublished &- words[1]), Int(words[3] &- words[4]), Int(words[9] &- words[10]))
    }
}
