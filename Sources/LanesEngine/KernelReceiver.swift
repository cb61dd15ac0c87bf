import Glibc
import LanesCore
import LanesXDP

/// The kernel stack as a device under test (`lanes sink --kernel`, `lanes scale
/// --dut kernel`): one UDP socket per core on one port (SO_REUSEPORT, so the
/// kernel spreads flows over them by their 4-tuple hash), each served by a
/// thread pinned to its core calling recvmmsg in batches of 64. This is the
/// "traditional" receive path Lanes is compared with: an skb per packet, the IP
/// and UDP layers, a socket queue and a copy to user space.
public final class KernelReceiver {
    public let port: UInt16
    public let cores: [Int]
    let fds: [Int32]
    public let stats: StatsArea
    static let batch = 64
    /// A jumbo datagram (MTU 9000) whole: the bytes counted are the bytes received.
    static let bufferBytes = 9216

    /// Opens and binds the sockets (on every address of the current namespace).
    public init(port: UInt16, cores: [Int]) throws(LanesError) {
        guard !cores.isEmpty else { throw LanesError("the kernel receiver needs at least one core") }
        let online = Sysfs.onlineCPUs()
        if let bad = cores.first(where: { $0 < 0 || $0 >= online }) {
            throw LanesError("core \(bad) out of range", fix: "use cores within 0-\(online - 1)")
        }
        self.port = port
        self.cores = cores
        var opened: [Int32] = []
        for _ in cores {
            let fd: Int32
            do {
                fd = try syscall("socket(AF_INET, SOCK_DGRAM) for the kernel receiver") { socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
            } catch {
                opened.forEach { Glibc.close($0) }
                throw error
            }
            opened.append(fd)
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, 4)
            // A deep queue, so a burst is not lost to the default 208 KiB (RCVBUFFORCE passes rmem_max).
            var buf: Int32 = 32 << 20
            if setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, 4) != 0 { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, 4) }
            // recvmmsg wakes at least every 100 ms, so a stop is seen.
            var tv = timeval(tv_sec: 0, tv_usec: 100_000)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            sa.sin_port = port.bigEndian
            let r = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            if r != 0 {
                let e = errno
                opened.forEach { Glibc.close($0) }
                throw LanesError.system("bind UDP port \(port) for the kernel receiver", errno: e, fix: e == EADDRINUSE ? "another program holds the port; pick another --port" : nil)
            }
        }
        fds = opened
        stats = StatsArea(lanes: cores.count)
    }

    deinit { fds.forEach { Glibc.close($0) } }

    /// Starts one pinned thread per socket; they run until `stop` is raised.
    public func start(stop: StopFlag) throws(LanesError) -> [PinnedThread] {
        var threads: [PinnedThread] = []
        for (i, core) in cores.enumerated() {
            let fd = fds[i], counters = stats.counters(i)
            do {
                threads.append(try PinnedThread(core: core, name: "udprx\(i)") {
                    KernelReceiver.loop(fd: fd, counters: counters, stop: stop)
                })
            } catch {
                stop.raise()
                threads.forEach { $0.join() }
                throw error
            }
        }
        return threads
    }

    /// One socket: recvmmsg into preallocated buffers, count, repeat.
    static func loop(fd: Int32, counters: LaneCounters, stop: StopFlag) {
        let n = batch, size = bufferBytes
        let buffers = UnsafeMutableRawPointer.allocate(byteCount: n * size, alignment: 64)
        let lens = UnsafeMutablePointer<UInt32>.allocate(capacity: n)
        defer { buffers.deallocate(); lens.deallocate() }
        while !stop.isRaised {
            let got = receiveDatagrams(fd: fd, buffers: buffers, count: n, size: size, lengths: lens)
            if got <= 0 { continue } // timeout (EAGAIN) or EINTR: check the stop flag
            var bytes: UInt64 = 0
            for i in 0..<got { bytes &+= UInt64(lens[i]) }
            counters.add(.rxPackets, UInt64(got))
            counters.add(.rxBytes, bytes)
            counters.add(.bursts, 1)
        }
    }

    /// UDP's receive errors in this namespace (/proc/net/snmp): datagrams the
    /// kernel dropped for a full socket queue, and all its receive errors.
    public static func udpErrors() -> (rcvbuf: UInt64, inErrors: UInt64) {
        let lines = (Sysfs.read("/proc/net/snmp") ?? "").split(separator: "\n").filter { $0.hasPrefix("Udp:") }
        guard lines.count >= 2 else { return (0, 0) }
        let names = lines[0].split(separator: " "), values = lines[1].split(separator: " ")
        func value(_ n: String) -> UInt64 { names.firstIndex(of: Substring(n)).flatMap { $0 < values.count ? UInt64(values[$0]) : nil } ?? 0 }
        return (value("RcvbufErrors"), value("InErrors"))
    }
}
