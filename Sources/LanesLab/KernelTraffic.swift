import Glibc
import LanesXDP

/// UDP sent through the kernel stack of the current namespace: a reference
/// traffic source that does not depend on Lanes itself.
public enum KernelTraffic {
    /// Sends `count` datagrams over `flows` source ports, paced at `pps` (0: unpaced).
    /// Only addresses in 198.18.0.0/15 are accepted. Returns the number sent.
    public static func sendUDP(to address: String, port: UInt16, count: Int, flows: Int,
                               payload: Int, pps: Int) throws(LanesError) -> Int {
        var dst = sockaddr_in()
        dst.sin_family = sa_family_t(AF_INET)
        dst.sin_port = port.bigEndian
        guard inet_pton(AF_INET, address, &dst.sin_addr) == 1 else {
            throw LanesError("bad IPv4 address '\(address)'", fix: "use a dotted quad in 198.18.0.0/15")
        }
        let host = UInt32(bigEndian: dst.sin_addr.s_addr)
        guard host & 0xfffe_0000 == 0xc612_0000 else {
            throw LanesError("address \(address) is outside 198.18.0.0/15", fix: "Lanes sends only to the benchmarking range")
        }
        guard count >= 1 else { throw LanesError("bad --count \(count)", fix: "send 1 packet or more") }
        guard flows >= 1, flows <= 4096 else { throw LanesError("bad --flows \(flows)", fix: "use 1-4096 flows") }
        guard payload >= 0, payload <= 1400 else { throw LanesError("bad --size \(payload)", fix: "use a payload of 0-1400 bytes") }
        guard pps >= 0 else { throw LanesError("bad --pps \(pps)", fix: "give packets per second, or 0 for unpaced") }
        var fds: [Int32] = []
        defer { fds.forEach { close($0) } }
        for _ in 0..<flows {
            let fd = try syscall("socket(AF_INET, SOCK_DGRAM)") { socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0) }
            fds.append(fd)
            var buf: Int32 = 1 << 20
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, 4)
        }
        let data = [UInt8](repeating: 0x5a, count: payload)
        var sent = 0
        var t0 = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t0)
        let start = Double(t0.tv_sec) + Double(t0.tv_nsec) / 1e9
        while sent < count {
            let fd = fds[sent % flows]
            let n = data.withUnsafeBytes { b in
                withUnsafePointer(to: &dst) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, b.baseAddress, b.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
            if n < 0 {
                let e = errno
                if e == EINTR || e == ENOBUFS || e == EAGAIN { usleep(100); continue }
                throw LanesError.system("sendto \(address):\(port)", errno: e)
            }
            sent += 1
            if pps > 0 && sent % 16 == 0 {
                var now = timespec()
                clock_gettime(CLOCK_MONOTONIC, &now)
                let ahead = Double(sent) / Double(pps) - (Double(now.tv_sec) + Double(now.tv_nsec) / 1e9 - start)
                if ahead > 0 { usleep(UInt32(ahead * 1e6)) }
            }
        }
        return sent
    }
}
