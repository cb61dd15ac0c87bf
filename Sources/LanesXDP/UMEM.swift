import CLanes
import Glibc

/// A UMEM: the packet buffer area shared with the kernel, cut into equal frames,
/// with its fill and completion rings. Lanes gives each lane its own UMEM (and
/// shares it across that lane's sockets on two ports with XDP_SHARED_UMEM), so a
/// frame never crosses cores and no lock guards the free frames. One shared UMEM
/// per interface would need a multi-consumer free list on every frame: measured
/// in Benchmarks/ (2026-11-25, AMD EPYC VM), popping and pushing 64 frames costs
/// about 500 ns in a lane's own FIFO pool and about 1,730 ns through an MPMC ring
/// one frame at a time, uncontended; with lanes on other cores contending for the
/// same indices it only grows. Pipeline mode, where frames must cross cores,
/// returns them through one SPSC ring per worker instead.
public final class UMEM {
    public struct Config: Sendable {
        public var frameCount: Int = 4096
        public var frameSize: Int = 2048
        public var headroom: Int = 0
        public var fillSize: Int = 2048
        public var completionSize: Int = 2048
        public var numaNode: Int? = nil
        public init() {}

        public var bytes: Int { frameCount * frameSize }

        public func validate() throws(LanesError) {
            guard frameSize == 2048 || frameSize == 4096 else {
                throw LanesError("frame size \(frameSize) not supported", fix: "use --frame-size 2048 or 4096")
            }
            guard frameCount >= 64, frameCount <= 1 << 20, frameCount & (frameCount - 1) == 0 else {
                throw LanesError("frame count \(frameCount) must be a power of two from 64 to 1048576", fix: "e.g. --frames 4096")
            }
            guard headroom >= 0, headroom <= frameSize / 2 else {
                throw LanesError("headroom \(headroom) too large", fix: "use at most half the frame size")
            }
            for (n, v) in [("fill", fillSize), ("completion", completionSize)] {
                guard v >= 64, v & (v - 1) == 0, v <= frameCount else {
                    throw LanesError("\(n) ring size \(v) must be a power of two from 64 to the frame count", fix: "e.g. --ring-size 2048")
                }
            }
        }
    }

    public let config: Config
    public let area: UnsafeMutableRawPointer
    public let hugepages: Bool
    public let numaBound: Bool
    let handle: OpaquePointer
    /// The fill and completion rings of the first socket; stable addresses.
    let fill: UnsafeMutablePointer<xsk_ring_prod>
    let completion: UnsafeMutablePointer<xsk_ring_cons>

    public init(_ config: Config) throws(LanesError) {
        try config.validate()
        self.config = config
        let size = config.bytes
        var huge = false
        var p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1, 0)
        if p == MAP_FAILED || p == nil {
            p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        } else {
            huge = true
        }
        guard let p, p != MAP_FAILED else { throw LanesError.system("mmap \(size) bytes for UMEM", errno: lanes_errno()) }
        var bound = false
        if let node = config.numaNode, node >= 0, numa_available() >= 0 {
            numa_tonode_memory(p, size, Int32(node))
            bound = true
        }
        // Touch every page now, on the right node, not on the first packet.
        memset(p, 0, size)
        area = p
        hugepages = huge
        numaBound = bound
        fill = .allocate(capacity: 1)
        fill.initialize(to: xsk_ring_prod())
        completion = .allocate(capacity: 1)
        completion.initialize(to: xsk_ring_cons())
        var cfg = xsk_umem_config(fill_size: UInt32(config.fillSize), comp_size: UInt32(config.completionSize),
                                  frame_size: UInt32(config.frameSize), frame_headroom: UInt32(config.headroom), flags: 0)
        var h: OpaquePointer?
        let r = xsk_umem__create(&h, p, UInt64(size), fill, completion, &cfg)
        guard r == 0, let h else {
            munmap(p, size)
            fill.deallocate()
            completion.deallocate()
            let e = -r
            throw LanesError.system("create UMEM of \(config.frameCount) frames x \(config.frameSize) bytes", errno: e,
                                    fix: e == ENOMEM || e == EPERM ? "run as root (CAP_IPC_LOCK pins UMEM), or use fewer --frames" : nil)
        }
        handle = h
    }

    deinit {
        xsk_umem__delete(handle)
        munmap(area, config.bytes)
        fill.deallocate()
        completion.deallocate()
    }

    /// Hugepages or not, and NUMA placement, in words for the run report.
    public var placement: String {
        (hugepages ? "hugepages" : "normal pages (no hugepages available)") + (numaBound ? ", NUMA node \(config.numaNode!)" : "")
    }
}
