import CLanes
import Glibc
import LanesCore
import LanesPacket

/// The XDP programs compiled from bpf/ and embedded in the binary (see Plugins/BPFBuild).
public enum EmbeddedBPF {}

/// How the XDP program is attached: `--xdp native|generic|auto`.
public enum XDPMode: String, Sendable, CaseIterable, Codable {
    case native, generic, auto

    /// XDP_FLAGS_DRV_MODE / XDP_FLAGS_SKB_MODE.
    var flags: UInt32 {
        switch self {
        case .native: lanes_xdp_flags_drv_mode()
        case .generic: lanes_xdp_flags_skb_mode()
        case .auto: 0
        }
    }
}

/// What the program does with matching packets (enum lanes_action in bpf/lanes.bpf.c).
public enum XDPAction: UInt32, Sendable {
    /// Redirect into the queue's AF_XDP socket when one is registered.
    case redirect = 0
    /// Count and drop in XDP: the sink that generator tests count into.
    case sink = 1
    /// Count and pass to the kernel.
    case countAndPass = 2
    /// Count the generator's signed packets per stream in XDP, then drop (`gen --rx xdp`).
    case signedReceive = 3
    /// `fwd --mode l3 --routes kernel`: the kernel's FIB decides each packet
    /// (bpf_fib_lookup: rules, tables, route types, multipath, MTU). A packet it
    /// forwards by the forwarder's other port gets the next hop's and the port's
    /// MACs and goes to the lane; a blackhole drops; anything the kernel answers or
    /// handles itself (ICMP errors, local, fragmenting, unresolved neighbours) passes.
    case forwardByFIB = 4
    /// `fwd --path xdp`: forward in the XDP program itself (`XDPForwarding`), out by
    /// the program's TX port (a devmap) or back out by XDP_TX; no AF_XDP socket.
    case forwardInXDP = 5
}

/// What `.forwardInXDP` does to a packet before it sends it (enum lanes_xdp_fwd).
public enum XDPForwarding: Sendable, Equatable {
    /// As it came, out of the TX port.
    case io
    /// Ethernet addresses swapped, back out of the port it came in on (XDP_TX).
    case macswap
    /// Destination := the next hop, source := the TX port's MAC.
    case l2(nextHop: MACAddress, source: MACAddress)
    /// The kernel's FIB (bpf_fib_lookup, as `.forwardByFIB`), then the header
    /// check, the pad trimmed and TTL or hop limit down, in XDP.
    case fib(XDPProgram.FIBConfig)
    /// The route file's tables (`loadRoutes`), the route's next hop, `source` as the source MAC.
    case routes(source: MACAddress)

    var code: UInt32 {
        switch self {
        case .io: LANES_XDP_IO.rawValue
        case .macswap: LANES_XDP_MACSWAP.rawValue
        case .l2: LANES_XDP_L2.rawValue
        case .fib: LANES_XDP_FIB.rawValue
        case .routes: LANES_XDP_ROUTES.rawValue
        }
    }
}

/// One stream's receive counts from the XDP receiver, merged over CPUs
/// (struct lanes_stream_rx: sums, and the largest `highest`).
public struct SignedStreamCounts: Sendable, Equatable {
    public var received: UInt64 = 0
    public var duplicates: UInt64 = 0
    public var reordered: UInt64 = 0
    /// One past the highest sequence seen.
    public var highest: UInt64 = 0
    /// The flow and RX queue of its first packet (on the CPU that saw the most of it).
    public var flow: FlowKey?
    public var queue: Int?
    public init() {}
}

/// What the XDP receiver saw, merged over CPUs.
public struct SignedReceive: Sendable {
    /// Indexed by stream id: every id below the program's `streams`.
    public var streams: [SignedStreamCounts]
    /// Every packet with the signature's magic, `overflowPackets` included.
    public var signedPackets: UInt64 = 0
    public var unsignedPackets: UInt64 = 0
    /// Signed packets whose stream id is past the tracked ones.
    public var overflowPackets: UInt64 = 0
    /// LatencyHistogram's buckets, and the summary fields.
    public var latencyBuckets: [UInt64]
    public var latencyCount: UInt64 = 0
    public var latencyMin: UInt64 = .max
    public var latencyMax: UInt64 = 0
    public var latencySum: UInt64 = 0
}

/// Per-queue counters of the XDP program, summed over CPUs (struct lanes_qstats).
public struct XDPQueueCounters: Sendable, Equatable, Codable {
    public var redirected: UInt64 = 0
    public var passed: UInt64 = 0
    public var dropped: UInt64 = 0
    public var matchedBytes: UInt64 = 0
    /// Dropped by the per-flow policer (over --flow-cap).
    public var policed: UInt64 = 0
    /// `.forwardByFIB`, by cause (each also in `passed` or `dropped`); see `FIBCauses`.
    public var unresolved: UInt64 = 0
    public var blackhole: UInt64 = 0
    public var unreachable: UInt64 = 0
    public var ttlExpired: UInt64 = 0
    public var tooBig: UInt64 = 0
    public var tooBigDropped: UInt64 = 0
    public var notForwarded: UInt64 = 0
    public var otherPort: UInt64 = 0
    /// Packets that matched the filter (`matchedBytes`' packets).
    public var matched: UInt64 = 0
    /// `.forwardInXDP`: sent by the TX port (or XDP_TX), and their bytes.
    public var forwarded: UInt64 = 0
    public var forwardedBytes: UInt64 = 0
    /// `.forwardInXDP` with a route file, dropped by cause (each also in `dropped`):
    /// no route by this port; a malformed header or a bad IPv4 header checksum.
    public var noRoute: UInt64 = 0
    public var badHeader: UInt64 = 0
    public init() {}

    /// One CPU's struct lanes_qstats (bpf/lanes_shared.h).
    init(_ q: lanes_qstats) {
        (redirected, passed, dropped, matchedBytes, policed) = (q.redirected, q.passed, q.dropped, q.matched_bytes, q.policed)
        (unresolved, blackhole, unreachable, ttlExpired) = (q.unresolved, q.blackhole, q.unreachable, q.ttl_expired)
        (tooBig, tooBigDropped, notForwarded, otherPort) = (q.too_big, q.too_big_dropped, q.not_forwarded, q.other_port)
        (matched, forwarded, forwardedBytes, noRoute, badHeader) = (q.matched, q.forwarded, q.forwarded_bytes, q.no_route, q.bad_header)
    }

    public static func + (a: Self, b: Self) -> Self {
        var s = a
        s.redirected += b.redirected; s.passed += b.passed; s.dropped += b.dropped; s.matchedBytes += b.matchedBytes
        s.policed += b.policed; s.unresolved += b.unresolved; s.blackhole += b.blackhole; s.unreachable += b.unreachable
        s.ttlExpired += b.ttlExpired; s.tooBig += b.tooBig; s.tooBigDropped += b.tooBigDropped
        s.notForwarded += b.notForwarded; s.otherPort += b.otherPort
        s.matched += b.matched; s.forwarded += b.forwarded; s.forwardedBytes += b.forwardedBytes
        s.noRoute += b.noRoute; s.badHeader += b.badHeader
        return s
    }
}

/// What is attached to an interface now.
public struct AttachedXDP: Sendable, Codable, Equatable {
    public var id: UInt32
    public var name: String
    /// "native", "generic" or "offload".
    public var mode: String
    public var isLanes: Bool {
        [XDPProgram.programName, XDPProgram.forwardProgramName, XDPProgram.forwardFragsProgramName, LiveFramesProgram.programName].contains(name)
    }
}

private let libbpfQuiet: Void = {
    if getenv("LANES_DEBUG_BPF") == nil {
        libbpf_set_print(nil)
    }
}()

/// Lanes' XDP program (bpf/lanes.bpf.c), loaded into the kernel, configured and
/// attached to one interface. The program is recognised by its name, so a program
/// left behind by a killed Lanes is replaced at the next start; a foreign program
/// is refused unless `force`.
public final class XDPProgram {
    public static let programName = "lanes_xdp"
    /// The program `.forwardInXDP` attaches (`fwd --path xdp`): without frags, so
    /// a packet's length is data_end - data, not a helper call.
    public static let forwardProgramName = "lanes_xdp_fwd"
    /// The same with frags, for an interface whose MTU is over `singleBufferMTU`.
    public static let forwardFragsProgramName = "lanes_fwd_frags"
    /// The largest MTU at which a driver keeps an XDP packet in one buffer for a
    /// program without frags (ena's limit, the tightest known: a 4 KiB page less
    /// 256 bytes of headroom, 320 of skb_shared_info and 22 of Ethernet, VLAN
    /// tag and FCS; veth's is 3506). The kernel refuses such a program above it.
    public static let singleBufferMTU = InterfaceInfo.enaXDPMaxMTU
    static let magic = UInt32(LANES_MAGIC)

    let object: OpaquePointer
    public let programFD: Int32
    public let xsksMapFD: Int32
    let statsFD: Int32
    public private(set) var ifindex: UInt32 = 0
    public private(set) var attachedMode: XDPMode?
    public private(set) var interface = ""

    let rxStreamsFD: Int32
    let rxLatencyFD: Int32
    let rxTotalsFD: Int32
    let txPortFD: Int32
    let routes4FD: Int32
    let routes6FD: Int32
    let nextHopsFD: Int32
    /// Streams the signed receiver counts (its per-CPU map's size).
    public let streams: Int

    /// Loads the embedded program into the kernel (not yet attached). `streams`
    /// sizes the signed receiver's per-stream map (action `.signedReceive`).
    /// `routes` sizes the route file's tables (`.forwardInXDP` with `.routes`).
    /// `frags`: `.forwardInXDP` for an interface whose MTU needs multi-buffer
    /// (over `singleBufferMTU`); the lanes' program always has frags.
    public init(filter: LaneFilter = .all, action: XDPAction = .redirect, flowCapBps: UInt64 = 0, streams: Int = 1, fib: FIBConfig? = nil,
                forwarding: XDPForwarding? = nil, routes: Int = 1, frags: Bool = false) throws(LanesError) {
        self.streams = max(1, streams)
        // One of the object's programs is loaded, over the same maps: the kernel
        // refuses a map (the devmap) shared by programs with and without frags.
        let program = action != .forwardInXDP ? XDPProgram.programName : frags ? XDPProgram.forwardFragsProgramName : XDPProgram.forwardProgramName
        let streams = self.streams
        var cfg = XDPProgram.config(filter: filter, action: action, flowCapBps: flowCapBps, streams: streams, fib: fib,
                                    forwarding: forwarding)
        let obj = try withUnsafeBytes(of: &cfg) { (raw) throws(LanesError) in
            try XDPProgram.loadEmbedded(EmbeddedBPF.lanes, name: "lanes", what: "XDP", program: program, rodata: raw,
                                        maxEntries: [("lanes_rx_streams", streams), ("lanes_routes4", routes), ("lanes_routes6", routes), ("lanes_next_hops", routes)])
        }
        object = obj
        func fd(ofMap name: String) -> Int32 { bpf_object__find_map_fd_by_name(obj, name) }
        programFD = bpf_program__fd(bpf_object__find_program_by_name(obj, program))
        xsksMapFD = fd(ofMap: "lanes_xsks")
        statsFD = fd(ofMap: "lanes_qstats")
        rxStreamsFD = fd(ofMap: "lanes_rx_streams")
        rxLatencyFD = fd(ofMap: "lanes_rx_latency")
        rxTotalsFD = fd(ofMap: "lanes_rx_totals")
        txPortFD = fd(ofMap: "lanes_tx_port")
        routes4FD = fd(ofMap: "lanes_routes4")
        routes6FD = fd(ofMap: "lanes_routes6")
        nextHopsFD = fd(ofMap: "lanes_next_hops")
        guard programFD >= 0, xsksMapFD >= 0, statsFD >= 0, rxStreamsFD >= 0, rxLatencyFD >= 0, rxTotalsFD >= 0,
              txPortFD >= 0, routes4FD >= 0, routes6FD >= 0, nextHopsFD >= 0 else {
            bpf_object__close(obj)
            throw LanesError("embedded XDP object lacks its program or maps", fix: "rebuild with 'swift build'")
        }
    }

    deinit {
        detach()
        bpf_object__close(object)
    }

    /// `.forwardByFIB` on one interface: the interface the lanes send by, this
    /// interface's MAC, and whether a DF-clear IPv4 packet over the egress MTU is
    /// dropped rather than passed to the kernel to fragment.
    public struct FIBConfig: Sendable, Equatable {
        public var egressIfindex: UInt32
        public var mac: MACAddress
        public var dropFragmentable: Bool
        public init(egressIfindex: UInt32, mac: MACAddress, dropFragmentable: Bool) {
            self.egressIfindex = egressIfindex; self.mac = mac; self.dropFragmentable = dropFragmentable
        }

        /// For `interface` (in the current namespace) sending by `egress`.
        public init(interface: String, egress: String, dropFragmentable: Bool) throws(LanesError) {
            let out = if_nametoindex(egress)
            guard out != 0 else { throw LanesError("interface '\(egress)' not found", fix: "see 'ip link'") }
            self.init(egressIfindex: out, mac: try Sysfs.mac(of: interface), dropFragmentable: dropFragmentable)
        }
    }

    /// The program's config (struct lanes_config, bpf/lanes_shared.h): the filter,
    /// action and per-flow cap, loaded as the object's .rodata and frozen there, so
    /// the kernel's verifier removes the code this config never runs. `.forwardInXDP`
    /// with `.fib` takes its FIB config from `forwarding`.
    static func config(filter: LaneFilter, action: XDPAction, flowCapBps: UInt64, streams: Int, fib: FIBConfig?,
                       forwarding: XDPForwarding?) -> lanes_config {
        var cfg = lanes_config()
        var fib = fib
        cfg.magic = XDPProgram.magic
        cfg.action = action.rawValue
        cfg.proto_mask = filter.protocols.rawValue
        cfg.l4 = UInt32(filter.transport)
        cfg.dport_lo = UInt16(filter.destinationPorts?.lowerBound ?? 0)
        cfg.dport_hi = UInt16(filter.destinationPorts?.upperBound ?? 0)
        cfg.streams = UInt32(streams)
        cfg.flow_cap_bps = flowCapBps
        // Burst: 10 ms at the cap, at least two full-size frames.
        cfg.flow_burst_bytes = flowCapBps == 0 ? 0 : max(flowCapBps / 8 / 100, 2 * 1518)
        // MACs in the frame's byte order, as the program compares and writes them.
        func put(_ mac: MACAddress, _ field: inout (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)) {
            let m = mac.array
            field = (m[0], m[1], m[2], m[3], m[4], m[5])
        }
        if let forwarding {
            cfg.xdp_fwd = forwarding.code
            switch forwarding {
            case .l2(let next, let source): put(next, &cfg.next_hop); put(source, &cfg.src_mac)
            case .routes(let source): put(source, &cfg.src_mac)
            case .fib(let f): fib = f
            case .io, .macswap: break
            }
        }
        if let fib {
            cfg.fib_egress = fib.egressIfindex
            cfg.fib_flags = fib.dropFragmentable ? UInt32(LANES_FIB_DROP_FRAGMENTABLE.rawValue) : 0
            put(fib.mac, &cfg.mac)
        }
        return cfg
    }

    /// Attaches to `interface` in the current namespace. A Lanes program already
    /// there (from a killed run) is replaced; a foreign one only with `force`.
    public func attach(interface name: String, mode: XDPMode, force: Bool = false) throws(LanesError) {
        let (index, m) = try XDPProgram.attach(programFD: programFD, interface: name, mode: mode, force: force)
        ifindex = index
        attachedMode = m
        interface = name
        attachedID = XDPProgram.attached(ifindex: index)?.id
    }

    /// The kernel's id of this program, once attached (what a watch compares).
    public private(set) var attachedID: UInt32?

    /// Opens one of the embedded objects (bpf/*.bpf.c), sizes the maps named in
    /// `maxEntries` (at least 1 entry each), gives its .rodata the bytes `rodata`
    /// (which must be the section's size) and loads it into the kernel: all its
    /// programs, or only `program`.
    static func loadEmbedded(_ base64: String, name: String, what: String, program: String? = nil,
                             rodata: UnsafeRawBufferPointer? = nil, maxEntries: [(String, Int)]) throws(LanesError) -> OpaquePointer {
        _ = libbpfQuiet
        guard let bytes = base64Decode(base64) else {
            throw LanesError("embedded \(what) object is corrupt", fix: "rebuild with 'swift build'")
        }
        var openOpts = bpf_object_open_opts()
        openOpts.sz = MemoryLayout<bpf_object_open_opts>.size
        let obj: OpaquePointer? = bytes.withUnsafeBytes { raw in
            name.withCString { n in
                openOpts.object_name = n
                return bpf_object__open_mem(raw.baseAddress, raw.count, &openOpts)
            }
        }
        guard let obj, libbpf_get_error(UnsafeRawPointer(obj)) == 0 else {
            throw LanesError.system("open the embedded \(what) object", errno: lanes_errno())
        }
        for (map, entries) in maxEntries {
            _ = bpf_map__set_max_entries(bpf_object__find_map_by_name(obj, map), UInt32(max(entries, 1)))
        }
        if let rodata {
            var size = 0
            var m = bpf_object__next_map(obj, nil)
            while let map = m, !(bpf_map__is_internal(map) && String(cString: bpf_map__name(map)).hasSuffix(".rodata")) {
                m = bpf_object__next_map(obj, map)
            }
            guard let map = m, bpf_map__initial_value(map, &size) != nil, size == rodata.count else {
                bpf_object__close(obj)
                throw LanesError("embedded \(what) object's .rodata is not its config (\(size) bytes, not \(rodata.count))",
                                 fix: "rebuild with 'swift build'")
            }
            let set = bpf_map__set_initial_value(map, rodata.baseAddress, rodata.count)
            if set < 0 {
                bpf_object__close(obj)
                throw LanesError.system("set the \(what) program's config (.rodata)", errno: -set)
            }
        }
        if let program {
            var p = bpf_object__next_program(obj, nil)
            while let prog = p {
                _ = bpf_program__set_autoload(prog, String(cString: bpf_program__name(prog)) == program)
                p = bpf_object__next_program(obj, prog)
            }
        }
        let loaded = bpf_object__load(obj)
        if loaded < 0 {
            bpf_object__close(obj)
            let e = -loaded
            throw LanesError.system("load the \(what) program into the kernel", errno: e,
                                    fix: e == EPERM ? "run as root; BPF needs CAP_BPF and CAP_NET_ADMIN" : nil)
        }
        return obj
    }

    /// Attaches any of Lanes' programs; returns the ifindex and the mode it got.
    static func attach(programFD: Int32, interface name: String, mode: XDPMode, force: Bool) throws(LanesError) -> (UInt32, XDPMode) {
        let index = if_nametoindex(name)
        guard index != 0 else {
            throw LanesError("interface '\(name)' not found", fix: "see 'ip link', or pass --netns NS (or run 'lanes testbed up')")
        }
        if let et = try? Ethtool(name), let d = try? et.driverInfo(),
           let refusal = InterfaceInfo.xdpRefusal(interface: name, driver: d.driver, mtu: Sysfs.mtu(of: name), channels: et.channels()) {
            throw refusal
        }
        if let existing = XDPProgram.attached(ifindex: index) {
            if !existing.isLanes && !force {
                throw LanesError("interface \(name) already has XDP program '\(existing.name)' (id \(existing.id)) attached",
                                 fix: "detach it ('ip link set dev \(name) xdp off') or pass --force to replace it")
            }
            if existing.isLanes {
                // One owner per interface: a running Lanes command keeps its program;
                // one whose process is gone is replaced, and we say so.
                if let owner = ProgramOwner.holders(ofProgram: existing.id).first {
                    throw LanesError("interface \(name) is in use by '\(owner.command)' (pid \(owner.pid))",
                                     fix: "stop that command first, or use another interface")
                }
                printError("lanes: replacing the XDP program (id \(existing.id)) a stopped Lanes process left on \(name)\n")
            }
            XDPProgram.detachAny(ifindex: index, mode: existing.mode)
        }
        let tries: [XDPMode] = mode == .auto ? [.native, .generic] : [mode]
        var lastErr: Int32 = 0
        for m in tries {
            let r = bpf_xdp_attach(Int32(index), programFD, m.flags | lanes_xdp_flags_update_if_noexist(), nil)
            if r == 0 {
                if mode == .auto && m == .generic {
                    printError("lanes: \(name) has no native XDP (\(String(cString: strerror(lastErr)))): running generic-mode XDP (an skb per packet, slower)\n")
                }
                return (index, m)
            }
            lastErr = -r
        }
        throw LanesError.system("attach XDP program to \(name) in \(mode.rawValue) mode", errno: lastErr,
                                fix: lastErr == EOPNOTSUPP ? "the driver lacks native XDP; try --xdp generic" : nil)
    }

    /// Detaches this program if it is still the one attached. Safe to call twice.
    public func detach() {
        guard ifindex != 0, let mode = attachedMode else { return }
        _ = lanes_xdp_detach_if(Int32(ifindex), mode.flags, programFD)
        ifindex = 0
        attachedMode = nil
    }

    static func detachAny(ifindex: UInt32, mode: String) {
        let flags: UInt32 = mode == "generic" ? lanes_xdp_flags_skb_mode() : mode == "native" ? lanes_xdp_flags_drv_mode() : 0
        _ = bpf_xdp_detach(Int32(ifindex), flags, nil)
    }

    /// `.forwardInXDP`: the interface packets leave by (key 0 of the devmap).
    public func setTxPort(_ interface: String) throws(LanesError) {
        var key: UInt32 = 0, index = if_nametoindex(interface)
        guard index != 0 else { throw LanesError("interface '\(interface)' not found", fix: "see 'ip link'") }
        try negErrno("set \(interface) as the XDP program's TX port (devmap)") { bpf_map_update_elem(txPortFD, &key, &index, 0) }
    }

    /// `.forwardInXDP` with `.routes`: the route file's prefixes in the LPM tries and
    /// each route's next hop, usable when it leaves by `egress` (or names no port).
    /// The program was loaded with `routes` at least `table.routes.count`.
    public func loadRoutes(_ table: RouteTable, egress: String) throws(LanesError) {
        for (i, r) in table.routes.enumerated() {
            var index = UInt32(i)
            let m = r.nextHop.array
            var hop = lanes_next_hop(mac: (m[0], m[1], m[2], m[3], m[4], m[5]), usable: r.port == nil || r.port == egress ? 1 : 0, pad: 0)
            try negErrno("load route \(r.prefix)/\(r.length)'s next hop") { bpf_map_update_elem(nextHopsFD, &index, &hop, 0) }
            // The LPM keys: prefixlen, then the address in network order.
            let what = "load route \(r.prefix)/\(r.length) into the XDP program's LPM table"
            switch r.prefix {
            case .v4(let a):
                var key = lanes_lpm4(prefixlen: UInt32(r.length), addr: a.value.bigEndian)
                try negErrno(what) { bpf_map_update_elem(routes4FD, &key, &index, 0) }
            case .v6(let a):
                var key = lanes_lpm6()
                key.prefixlen = UInt32(r.length)
                withUnsafeMutableBytes(of: &key.addr) { $0.copyBytes(from: a.bytes) }
                try negErrno(what) { bpf_map_update_elem(routes6FD, &key, &index, 0) }
            }
        }
    }

    /// Registers an AF_XDP socket for `queue` in the XSKMAP.
    public func register(socketFD: Int32, queue: UInt32) throws(LanesError) {
        var q = queue, fd = socketFD
        try negErrno("register AF_XDP socket for queue \(queue) in the XSKMAP") { bpf_map_update_elem(xsksMapFD, &q, &fd, 0) }
    }

    public func unregister(queue: UInt32) {
        var q = queue
        _ = bpf_map_delete_elem(xsksMapFD, &q)
    }

    /// Queues the per-queue counters hold (LANES_MAX_QUEUES, bpf/lanes_shared.h).
    public static let maxQueues = Int(LANES_MAX_QUEUES)

    /// Every queue's counters below `queues`, and any queue past them that saw
    /// a packet (added by 'ethtool -L' during a run that counts in XDP alone).
    public func countersByQueue(atLeast queues: Int) -> [(queue: Int, counters: XDPQueueCounters)] {
        (0..<XDPProgram.maxQueues).compactMap { q in
            let c = counters(queue: UInt32(q))
            return q < queues || c.matched > 0 || c.passed > 0 ? (q, c) : nil
        }
    }

    /// Per-queue counters, summed over CPUs.
    public func counters(queue: UInt32) -> XDPQueueCounters {
        let cpus = Int(libbpf_num_possible_cpus())
        guard cpus > 0 else { return XDPQueueCounters() }
        // A per-CPU map's lookup fills one value per possible CPU (each 8-byte aligned: 144 bytes here).
        var values = [lanes_qstats](repeating: lanes_qstats(), count: cpus)
        var key = queue
        let r = values.withUnsafeMutableBytes { bpf_map_lookup_elem(statsFD, &key, $0.baseAddress) }
        guard r == 0 else { return XDPQueueCounters() }
        return values.reduce(XDPQueueCounters()) { $0 + XDPQueueCounters($1) }
    }

    /// The signed receiver's counts, merged over CPUs (action `.signedReceive`).
    public func signedReceive() -> SignedReceive {
        let cpus = max(1, Int(libbpf_num_possible_cpus()))
        var out = SignedReceive(streams: [], latencyBuckets: [])
        // struct lanes_stream_rx (bpf/lanes_shared.h), one per CPU.
        var v = [lanes_stream_rx](repeating: lanes_stream_rx(), count: cpus)
        for i in 0..<streams {
            var key = UInt32(i)
            var c = SignedStreamCounts()
            if v.withUnsafeMutableBytes({ bpf_map_lookup_elem(rxStreamsFD, &key, $0.baseAddress) }) == 0 {
                var most: UInt64 = 0
                for cpu in 0..<cpus {
                    let s = v[cpu]
                    c.received += s.received; c.duplicates += s.duplicates; c.reordered += s.reordered
                    c.highest = max(c.highest, s.highest)
                    let seen = s.received + s.duplicates
                    if seen > most, let f = Self.streamFlow(s) {
                        most = seen
                        (c.flow, c.queue) = f
                    }
                }
            }
            out.streams.append(c)
        }
        var b = [UInt64](repeating: 0, count: cpus)
        for i in 0..<LatencyHistogram.bucketCount {
            var key = UInt32(i), n: UInt64 = 0
            if b.withUnsafeMutableBytes({ bpf_map_lookup_elem(rxLatencyFD, &key, $0.baseAddress) }) == 0 { n = b.reduce(0, &+) }
            out.latencyBuckets.append(n)
        }
        var t = [lanes_rx_totals](repeating: lanes_rx_totals(), count: cpus)
        var zero: UInt32 = 0
        if t.withUnsafeMutableBytes({ bpf_map_lookup_elem(rxTotalsFD, &zero, $0.baseAddress) }) == 0 {
            for r in t {
                out.signedPackets += r.signed_packets + r.overflow_packets; out.unsignedPackets += r.unsigned_packets
                out.overflowPackets += r.overflow_packets
                if r.latency_count > 0 {
                    out.latencyCount += r.latency_count
                    out.latencyMin = min(out.latencyMin, r.latency_min)
                    out.latencyMax = max(out.latencyMax, r.latency_max)
                    out.latencySum += r.latency_sum
                }
            }
        }
        return out
    }

    /// The flow part of struct lanes_stream_rx: addresses in network order, ports
    /// in host order, family, protocol and the RX queue (nil: family 0, none yet).
    static func streamFlow(_ s: lanes_stream_rx) -> (FlowKey, Int)? {
        var s = s
        let src: IPAddress, dst: IPAddress
        switch s.family {
        case 4: src = .v4(IPv4Address(UInt32(bigEndian: s.saddr.0))); dst = .v4(IPv4Address(UInt32(bigEndian: s.daddr.0)))
        case 6:
            src = withUnsafeBytes(of: &s.saddr) { .v6(IPv6Address(reading: $0.baseAddress!)) }
            dst = withUnsafeBytes(of: &s.daddr) { .v6(IPv6Address(reading: $0.baseAddress!)) }
        default: return nil
        }
        return (FlowKey(src: src, dst: dst, srcPort: s.sport, dstPort: s.dport, proto: s.proto), Int(s.queue))
    }

    /// The program attached to an interface now, if any.
    public static func attached(ifindex: UInt32) -> AttachedXDP? {
        var progID: UInt32 = 0, attachMode: UInt8 = 0
        guard lanes_xdp_query(Int32(ifindex), &progID, &attachMode) == 0, progID != 0 else { return nil }
        let mode: String
        switch UInt32(attachMode) {
        case UInt32(XDP_ATTACHED_DRV): mode = "native"
        case UInt32(XDP_ATTACHED_SKB): mode = "generic"
        case UInt32(XDP_ATTACHED_HW): mode = "offload"
        default: mode = "multi"
        }
        var buf = [CChar](repeating: 0, count: 17)
        let name = lanes_prog_name_by_id(progID, &buf) == 0 ? String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
        return AttachedXDP(id: progID, name: name, mode: mode)
    }
}

/// Standard base64 (RFC 4648) without Foundation, for the embedded objects.
func base64Decode(_ text: String) -> [UInt8]? {
    var table = [UInt8](repeating: 255, count: 256)
    for (i, c) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() { table[Int(c)] = UInt8(i) }
    var out: [UInt8] = []
    out.reserveCapacity(text.utf8.count * 3 / 4)
    var acc: UInt32 = 0, bits = 0
    for c in text.utf8 {
        if c == UInt8(ascii: "=") { break }
        let v = table[Int(c)]
        guard v != 255 else { return nil }
        acc = acc << 6 | UInt32(v)
        bits += 6
        if bits >= 8 {
            bits -= 8
            out.append(UInt8(truncatingIfNeeded: acc >> UInt32(bits)))
        }
    }
    return out
}
