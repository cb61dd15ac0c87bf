import CLanes
import Glibc

/// The live-frames transmit program (bpf/lanes_gen.bpf.c), loaded into the kernel
/// with its maps sized for a run: every lane's pattern slots and every stream's
/// sequence number. Each lane's state sits at the index of the CPU its thread is
/// pinned to, in an array mapped into this process (BPF_F_MMAPABLE), so a lane
/// thread sets its limit and the monitor reads its counters without a system call.
public final class LiveFramesProgram {
    public static let programName = "lanes_gen"
    /// Header bytes copied into every frame (LANES_GEN_TEMPLATE).
    public static let templateBytes = Int(LANES_GEN_TEMPLATE)
    /// The largest frame the kernel's test-run page pool holds on 4 KiB pages
    /// (TEST_MAX_PKT_SIZE in net/bpf/test_run.c, x86-64).
    public static let maxFrameBytes = 3408
    /// Lane states in the map (LANES_GEN_MAX_CPUS): one per CPU.
    public static let maxCPUs = Int(LANES_GEN_MAX_CPUS)
    static let laneBytes = MemoryLayout<lanes_gen_lane>.stride // bpf/lanes_shared.h
    /// Where each field of struct lanes_gen_lane lies in the mapped array's element.
    static func at(_ field: PartialKeyPath<lanes_gen_lane>) -> Int { MemoryLayout<lanes_gen_lane>.offset(of: field)! }
    static let sentAt = at(\.sent), bytesAt = at(\.bytes), shortFramesAt = at(\.short_frames)

    let object: OpaquePointer
    public let programFD: Int32
    let slotsFD: Int32
    let seqFD: Int32
    let lanesFD: Int32
    let lanes: UnsafeMutableRawPointer
    let lanesMapped: Int
    public let slotCount: Int
    public let streamCount: Int

    /// Loads the embedded program with room for `slots` pattern slots and `streams` streams.
    public init(slots: Int, streams: Int) throws(LanesError) {
        let obj = try XDPProgram.loadEmbedded(EmbeddedBPF.lanes_gen, name: "lanes_gen", what: "live-frames XDP",
                                              maxEntries: [("lanes_gen_slots", slots), ("lanes_gen_seq", streams)])
        object = obj
        programFD = bpf_program__fd(bpf_object__find_program_by_name(obj, LiveFramesProgram.programName))
        slotsFD = bpf_object__find_map_fd_by_name(obj, "lanes_gen_slots")
        seqFD = bpf_object__find_map_fd_by_name(obj, "lanes_gen_seq")
        lanesFD = bpf_object__find_map_fd_by_name(obj, "lanes_gen_lanes")
        guard programFD >= 0, slotsFD >= 0, seqFD >= 0, lanesFD >= 0 else {
            bpf_object__close(obj)
            throw LanesError("embedded live-frames object lacks its program or maps", fix: "rebuild with 'swift build'")
        }
        let size = (LiveFramesProgram.maxCPUs * LiveFramesProgram.laneBytes + 4095) & ~4095
        let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, lanesFD, 0)
        guard let p, p != MAP_FAILED else {
            let e = lanes_errno()
            bpf_object__close(obj)
            throw LanesError.system("map the live-frames lane states into memory", errno: e)
        }
        lanes = p
        lanesMapped = size
        slotCount = max(slots, 1)
        streamCount = max(streams, 1)
        // Live frames arrive from the loopback device (BPF_PROG_RUN without an
        // ingress device); anything else is a received packet the program passes.
        sourceIfindex = if_nametoindex("lo")
        for cpu in 0..<LiveFramesProgram.maxCPUs {
            lane(cpu).storeBytes(of: sourceIfindex, toByteOffset: Self.at(\.source_ifindex), as: UInt32.self)
        }
    }

    let sourceIfindex: UInt32
    /// The interface the program is attached to (0: none).
    public private(set) var attachedIfindex: UInt32 = 0
    public private(set) var attachedMode: XDPMode?

    /// Attaches the program to the sending interface: it passes what arrives there,
    /// keeps the program in the kernel's XDP dispatcher between runs, and lets
    /// drivers that need an attached program take redirected frames. Another
    /// program already there (a receiver on the same port) is left alone and the
    /// call returns false; only a live-frames program (a killed generator's) is replaced.
    @discardableResult
    public func attach(interface: String, mode: XDPMode) throws(LanesError) -> Bool {
        let index = if_nametoindex(interface)
        if let existing = XDPProgram.attached(ifindex: index),
           existing.name != LiveFramesProgram.programName || !ProgramOwner.holders(ofProgram: existing.id).isEmpty { return false }
        let (i, m) = try XDPProgram.attach(programFD: programFD, interface: interface, mode: mode, force: false)
        attachedIfindex = i
        attachedMode = m
        return true
    }

    public func detach() {
        guard attachedIfindex != 0, let m = attachedMode else { return }
        _ = lanes_xdp_detach_if(Int32(attachedIfindex), m.flags, programFD)
        attachedIfindex = 0
        attachedMode = nil
    }

    deinit {
        detach()
        munmap(lanes, lanesMapped)
        bpf_object__close(object)
    }

    /// Writes pattern slot `index`: the first `templateBytes` of a built frame and its facts.
    public func writeSlot(_ index: Int, header: UnsafeRawPointer, stream: Int, length: Int,
                          signatureOffset: Int, checksumOffset: Int) throws(LanesError) {
        var value = lanes_gen_slot()
        withUnsafeMutableBytes(of: &value.hdr) { $0.baseAddress!.copyMemory(from: header, byteCount: LiveFramesProgram.templateBytes) }
        value.stream = UInt32(stream)
        value.length = UInt16(length)
        value.sig = UInt16(signatureOffset)
        value.csum = UInt16(checksumOffset)
        var key = UInt32(index)
        try negErrno("write live-frames slot \(index)") { bpf_map_update_elem(slotsFD, &key, &value, 0) }
    }

    /// A lane's state, in the mapped array: fields of struct lanes_gen_lane.
    func lane(_ cpu: Int) -> UnsafeMutableRawPointer { lanes + cpu * LiveFramesProgram.laneBytes }

    /// Sets up the lane that runs on `cpu` before its first run: its slots, target and
    /// limit (frames past it are dropped in the program, so a count is exact).
    public func setLane(cpu: Int, firstSlot: Int, slots: Int, ifindex: UInt32, limit: UInt64) {
        let l = lane(cpu)
        l.initializeMemory(as: UInt8.self, repeating: 0, count: LiveFramesProgram.laneBytes)
        l.storeBytes(of: sourceIfindex, toByteOffset: Self.at(\.source_ifindex), as: UInt32.self)
        l.storeBytes(of: UInt32(firstSlot), toByteOffset: Self.at(\.first_slot), as: UInt32.self)
        l.storeBytes(of: UInt32(slots), toByteOffset: Self.at(\.slots), as: UInt32.self)
        l.storeBytes(of: ifindex, toByteOffset: Self.at(\.ifindex), as: UInt32.self)
        l.storeBytes(of: limit, toByteOffset: Self.at(\.limit), as: UInt64.self)
    }

    /// Frames the lane on `cpu` has handed to the redirect so far. The program
    /// writes it on that CPU with plain aligned 8-byte stores; a relaxed load here
    /// sees a whole value (no fence: nothing else is read in step with it).
    @inline(__always)
    public func sent(cpu: Int) -> UInt64 {
        lanes_load_relaxed_u64(lane(cpu).advanced(by: Self.sentAt).assumingMemoryBound(to: UInt64.self))
    }

    public func bytes(cpu: Int) -> UInt64 {
        lanes_load_relaxed_u64(lane(cpu).advanced(by: Self.bytesAt).assumingMemoryBound(to: UInt64.self))
    }

    public func shortFrames(cpu: Int) -> UInt64 {
        lanes_load_relaxed_u64(lane(cpu).advanced(by: Self.shortFramesAt).assumingMemoryBound(to: UInt64.self))
    }

    /// Next sequence number of each stream (= packets sent per stream), after the run.
    public func sequences() -> [UInt64] {
        (0..<streamCount).map { i in
            var key = UInt32(i), v: UInt64 = 0
            return bpf_map_lookup_elem(seqFD, &key, &v) == 0 ? v : 0
        }
    }

    /// One BPF_PROG_RUN: `repeat` frames initialised from `frame` (`size` bytes),
    /// in batches of `batch`. Returns 0 or a negative errno; runs on the caller's CPU.
    @inline(__always)
    public func run(frame: UnsafeRawPointer, size: Int, repeat count: UInt32, batch: UInt32) -> Int32 {
        lanes_xdp_live_run(programFD, frame, UInt32(size), count, batch)
    }

    /// Whether this kernel runs XDP programs in live-frames mode (5.18+): one run of
    /// one frame on a CPU with no lane set up, which the program drops.
    public func probe() -> Int32 {
        var frame = [UInt8](repeating: 0, count: LiveFramesProgram.templateBytes)
        return frame.withUnsafeMutableBytes { run(frame: $0.baseAddress!, size: $0.count, repeat: 1, batch: 1) }
    }
}
