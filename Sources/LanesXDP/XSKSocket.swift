import CLanes
import Glibc
import LanesCore

/// `--bind auto|copy|zero-copy`.
public enum BindMode: String, Sendable, CaseIterable, Codable {
    case auto, copy
    case zeroCopy = "zero-copy"
}

/// The kernel's XDP_STATISTICS for one socket.
public struct XSKStatistics: Sendable, Equatable, Codable {
    public var rxDropped: UInt64 = 0
    public var rxInvalidDescs: UInt64 = 0
    public var txInvalidDescs: UInt64 = 0
    public var rxRingFull: UInt64 = 0
    public var rxFillRingEmptyDescs: UInt64 = 0
    public var txRingEmptyDescs: UInt64 = 0
    public init() {}
    public static func + (a: Self, b: Self) -> Self {
        var s = a
        s.rxDropped += b.rxDropped; s.rxInvalidDescs += b.rxInvalidDescs; s.txInvalidDescs += b.txInvalidDescs
        s.rxRingFull += b.rxRingFull; s.rxFillRingEmptyDescs += b.rxFillRingEmptyDescs; s.txRingEmptyDescs += b.txRingEmptyDescs
        return s
    }
}

/// One AF_XDP socket bound to one queue of one interface, over a lane's UMEM.
/// Its RX and TX rings live at stable addresses for the lane to use.
public final class XSKSocket {
    public struct Config: Sendable {
        public var rxSize: Int = 2048
        public var txSize: Int = 2048
        public var bind: BindMode = .auto
        public var busyPoll: Bool = false
        public var busyPollBudget: Int = 64
        /// Bind with XDP_USE_SG: a packet may span several frames (AF_XDP
        /// multi-buffer, kernel 6.6+), XDP_PKT_CONTD on all its descriptors but the last.
        public var multiBuffer: Bool = false
        public init() {}
    }

    let handle: OpaquePointer
    public let fd: Int32
    public let interface: String
    public let queue: UInt32
    /// `--bind auto` that got copy mode: the errno of the zero-copy bind it tried first (0: none tried).
    public private(set) var zeroCopyRefusal: Int32 = 0

    /// Why this socket runs the mode it does, for the run header.
    public var bindReason: String {
        switch (boundMode, zeroCopyRefusal) {
        case (.zeroCopy, _): "zero-copy"
        case (_, 0): "copy"
        case (_, let e): "copy (zero-copy refused: \(String(cString: strerror(e))))"
        }
    }

    /// `.zeroCopy` or `.copy`: what the kernel gave us (never `.auto`).
    public let boundMode: BindMode
    /// libxdp's ring structs, owned here; lanes work them through `LaneRings`/`TXRings`.
    let rx: UnsafeMutablePointer<xsk_ring_cons>
    let tx: UnsafeMutablePointer<xsk_ring_prod>
    /// For a socket sharing another socket's UMEM: its own fill/completion rings.
    let fill: UnsafeMutablePointer<xsk_ring_prod>
    let completion: UnsafeMutablePointer<xsk_ring_cons>
    let ownsRings: Bool
    public let umem: UMEM

    /// Creates a socket on `interface` queue `queue`. The first socket of a UMEM
    /// uses the UMEM's fill/completion rings; later ones (`shared: true`) get their own.
    public init(interface: String, queue: UInt32, umem: UMEM, config: Config, shared: Bool = false) throws(LanesError) {
        guard config.rxSize >= 64, config.rxSize & (config.rxSize - 1) == 0,
              config.txSize >= 64, config.txSize & (config.txSize - 1) == 0 else {
            throw LanesError("ring size must be a power of two of at least 64", fix: "e.g. --ring-size 2048")
        }
        let rx = UnsafeMutablePointer<xsk_ring_cons>.allocate(capacity: 1); rx.initialize(to: xsk_ring_cons())
        let tx = UnsafeMutablePointer<xsk_ring_prod>.allocate(capacity: 1); tx.initialize(to: xsk_ring_prod())
        let fill: UnsafeMutablePointer<xsk_ring_prod>, completion: UnsafeMutablePointer<xsk_ring_cons>
        if shared {
            fill = .allocate(capacity: 1); fill.initialize(to: xsk_ring_prod())
            completion = .allocate(capacity: 1); completion.initialize(to: xsk_ring_cons())
        } else {
            fill = umem.fill
            completion = umem.completion
        }
        self.rx = rx; self.tx = tx; self.fill = fill; self.completion = completion
        ownsRings = shared
        self.umem = umem
        self.interface = interface
        self.queue = queue

        let tries: [UInt16]
        switch config.bind {
        case .copy: tries = [lanes_xdp_copy()]
        case .zeroCopy: tries = [lanes_xdp_zerocopy()]
        case .auto: tries = [lanes_xdp_zerocopy(), lanes_xdp_copy()]
        }
        var lastErr: Int32 = 0
        var made: OpaquePointer?
        var mode = BindMode.copy
        // EBUSY here is a socket of an ended process still being released (the
        // kernel frees a killed process's sockets asynchronously): a live Lanes
        // owner was refused earlier, at the XDP program. Retry for up to 2 s.
        var busySince: Double? = nil
        var attempt = 0
        attempts: while true {
          for bindFlags in tries {
            var cfg = xsk_socket_config()
            cfg.rx_size = UInt32(config.rxSize)
            cfg.tx_size = UInt32(config.txSize)
            cfg.libxdp_flags = lanes_xsk_inhibit_prog_load()
            cfg.xdp_flags = 0
            cfg.bind_flags = bindFlags | lanes_xdp_use_need_wakeup() | (config.multiBuffer ? lanes_xdp_use_sg() : 0)
            var h: OpaquePointer?
            let umemHandle = umem.handle
            let r = interface.withCString { name in
                shared ? xsk_socket__create_shared(&h, name, queue, umemHandle, rx, tx, fill, completion, &cfg)
                       : xsk_socket__create(&h, name, queue, umemHandle, rx, tx, &cfg)
            }
            if r == 0, let h {
                made = h
                mode = bindFlags == lanes_xdp_zerocopy() ? .zeroCopy : .copy
                if config.bind == .auto && mode == .copy { zeroCopyRefusal = lastErr }
                break attempts
            }
            lastErr = -r
          }
          guard lastErr == EBUSY else { break }
          var t = timespec()
          clock_gettime(CLOCK_MONOTONIC, &t)
          let now = Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
          if busySince == nil {
              busySince = now
              printError("lanes: \(interface) queue \(queue) is busy (a socket of an ended process may still be closing); retrying for up to 2 s\n")
          }
          guard now - busySince! < 2 else { break }
          attempt += 1
          usleep(20_000)
        }
        if made != nil && attempt > 0 { printError("lanes: \(interface) queue \(queue) bound after \(attempt) retries\n") }
        guard let made else {
            rx.deallocate(); tx.deallocate()
            if shared { fill.deallocate(); completion.deallocate() }
            var fix: String? = nil
            if config.multiBuffer && (lastErr == EOPNOTSUPP || lastErr == EINVAL) {
                fix = "this kernel or driver has no AF_XDP multi-buffer (XDP_USE_SG, kernel 6.6+; zero-copy needs driver support): lower the MTU to fit one frame, or use --bind copy"
            } else if config.bind == .zeroCopy && (lastErr == EOPNOTSUPP || lastErr == EINVAL || lastErr == EPROTONOSUPPORT) {
                // Blame the driver only where it does not advertise zero-copy.
                if XDPFeatures.query(ifindex: if_nametoindex(interface))?.contains(.zeroCopy) == true {
                    let up = Sysfs.read("/sys/class/net/\(interface)/operstate").map { $0 == "up" } ?? true
                    fix = "the driver advertises AF_XDP zero-copy, but the kernel refused it for this queue"
                        + (up ? " (a queue without its rings yet, or ring sizes past the driver's: try --ring-size 512)" : ": \(interface) is down, bring it up first ('ip link set \(interface) up')")
                        + "; --bind auto falls back to copy"
                } else {
                    fix = "\(interface)'s driver does not advertise AF_XDP zero-copy (veth never does); use --bind copy or auto"
                }
            } else if lastErr == EBUSY {
                fix = "another AF_XDP socket has held \(interface) queue \(queue) for 2 s (see 'ss --xdp -p')"
            }
            throw LanesError.system("create AF_XDP socket on \(interface) queue \(queue) (bind \(config.bind.rawValue)\(config.multiBuffer ? ", multi-buffer" : ""))",
                                    errno: lastErr, fix: fix)
        }
        handle = made
        fd = xsk_socket__fd(made)
        boundMode = mode
        if config.busyPoll { try enableBusyPoll(budget: config.busyPollBudget) }
    }

    deinit {
        xsk_socket__delete(handle)
        rx.deallocate(); tx.deallocate()
        if ownsRings { fill.deallocate(); completion.deallocate() }
    }

    /// Puts frames `frames` (indices into the UMEM) on the fill ring, as many as
    /// fit; returns how many went. Set-up calls it before the XDP program is
    /// attached, so the first packets find frames (the lane then owns them).
    public func primeFill(frames: Range<Int>, frameSize: Int) -> Int {
        ProducerRing<UInt64>(fill).prime(frames: frames, frameSize: frameSize)
    }

    /// Whether the views of each half went to their lane: taken once, on the
    /// lane's thread before its loop, and read by no one else.
    var rxHalfTaken = false, txHalfTaken = false

    /// Hands the RX half (RX ring, fill ring) to the one lane that receives on
    /// this socket: `LaneRings(receiving:transmitting:)` makes its views right
    /// after. A second take stops the process: two lanes on one ring is a bug.
    func takeRXHalf() -> (rx: UnsafeMutablePointer<xsk_ring_cons>, fill: UnsafeMutablePointer<xsk_ring_prod>) {
        precondition(!rxHalfTaken, "the RX half of the socket on \(interface) queue \(queue) was taken already")
        rxHalfTaken = true
        return (rx, fill)
    }

    /// The TX half's views (TX ring, the completion ring it completes into) for
    /// the one lane that transmits on this socket; taken once, as `takeRXHalf`.
    public func takeTXHalf() -> TXRings {
        precondition(!txHalfTaken, "the TX half of the socket on \(interface) queue \(queue) was taken already")
        txHalfTaken = true
        return TXRings(tx: ProducerRing(tx), completion: ConsumerRing(completion), socket: xskHandle)
    }

    /// What a lane receiving on `receiving` and transmitting on `transmitting`
    /// holds in their rings now (the monitor's frame count, any thread): through
    /// the owners, with no view made.
    public static func occupancy(receiving: XSKSocket, transmitting: XSKSocket) -> RingOccupancy {
        RingOccupancy.read(fill: receiving.fill, rx: receiving.rx, tx: transmitting.tx, completion: transmitting.completion)
    }

    /// The socket's descriptor as the lane uses it (kicks, poll).
    public var xskHandle: XSKHandle { XSKHandle(rawValue: fd) }

    /// SO_PREFER_BUSY_POLL, SO_BUSY_POLL (20 us) and SO_BUSY_POLL_BUDGET.
    func enableBusyPoll(budget: Int) throws(LanesError) {
        var one: Int32 = 1, usecs: Int32 = 20, b = Int32(budget)
        let size = socklen_t(4)
        try syscall("setsockopt(SO_PREFER_BUSY_POLL)") { setsockopt(fd, SOL_SOCKET, 69 /* SO_PREFER_BUSY_POLL */, &one, size) }
        try syscall("setsockopt(SO_BUSY_POLL)") { setsockopt(fd, SOL_SOCKET, SO_BUSY_POLL, &usecs, size) }
        try syscall("setsockopt(SO_BUSY_POLL_BUDGET)") { setsockopt(fd, SOL_SOCKET, 70 /* SO_BUSY_POLL_BUDGET */, &b, size) }
    }

    /// XDP_STATISTICS from the kernel.
    public func statistics() -> XSKStatistics {
        var st = xdp_statistics()
        var len = socklen_t(MemoryLayout<xdp_statistics>.size)
        var s = XSKStatistics()
        guard getsockopt(fd, SOL_XDP, XDP_STATISTICS, &st, &len) == 0 else { return s }
        s.rxDropped = st.rx_dropped
        s.rxInvalidDescs = st.rx_invalid_descs
        s.txInvalidDescs = st.tx_invalid_descs
        s.rxRingFull = st.rx_ring_full
        s.rxFillRingEmptyDescs = st.rx_fill_ring_empty_descs
        s.txRingEmptyDescs = st.tx_ring_empty_descs
        return s
    }
}
