import CLanes
import Glibc
import LanesPacket

/// The kernel's main routing table and neighbour table, dumped over rtnetlink
/// (RTM_GETROUTE, RTM_GETNEIGH) in the current network namespace, IPv4 and IPv6.
public enum RouteNetlink {
    // rtnetlink message types and attributes (linux/rtnetlink.h, linux/neighbour.h).
    static let getRoute: UInt16 = 26, newRoute: UInt16 = 24
    static let getNeigh: UInt16 = 30, newNeigh: UInt16 = 28
    static let rtaDst: UInt16 = 1, rtaOif: UInt16 = 4, rtaGateway: UInt16 = 5, rtaTable: UInt16 = 15
    static let ndaDst: UInt16 = 1, ndaLladdr: UInt16 = 2
    static let mainTable: UInt32 = 254, unicast: UInt8 = 1
    /// NUD_INCOMPLETE | NUD_FAILED: no usable link-layer address.
    static let unusable: UInt16 = 0x01 | 0x20

    /// Reads both tables; throws with the errno of a failing socket call.
    public static func read() throws(LanesError) -> KernelRoutes {
        let fd = try syscall("socket(AF_NETLINK, NETLINK_ROUTE)") {
            socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), NETLINK_ROUTE)
        }
        defer { close(fd) }
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var routes: [KernelRoutes.Route] = []
        var neighbours: [KernelRoutes.Neighbour] = []
        for family in [UInt8(AF_INET), UInt8(AF_INET6)] {
            // struct rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags (u32).
            try dump(fd, type: getRoute, header: [family, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) { type, body in
                guard type == newRoute, body.count >= 12 else { return }
                let h = body.startIndex
                let dstLen = Int(body[h + 1]), table8 = UInt32(body[h + 4]), rtype = body[h + 7]
                let attrs = body[(h + 12)...]
                let table = Netlink.attribute(rtaTable, in: attrs).flatMap(u32) ?? table8
                guard table == mainTable, rtype == unicast, let oif = Netlink.attribute(rtaOif, in: attrs).flatMap(u32),
                      let name = interfaceName(oif) else { return }
                let dst = Netlink.attribute(rtaDst, in: attrs).flatMap { address(family, $0) } ?? (family == UInt8(AF_INET) ? .v4(IPv4Address(0)) : .v6(IPv6Address(high: 0, low: 0)))
                let gw = Netlink.attribute(rtaGateway, in: attrs).flatMap { address(family, $0) }
                routes.append(.init(prefix: dst, length: dstLen, gateway: gw, interface: name))
            }
            // struct ndmsg: family, pad x3, ifindex (s32), state (u16), flags, type.
            try dump(fd, type: getNeigh, header: [family, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]) { type, body in
                guard type == newNeigh, body.count >= 12 else { return }
                let h = body.startIndex
                let ifindex = u32(body[(h + 4)..<(h + 8)]) ?? 0
                let state = UInt16(body[h + 8]) | UInt16(body[h + 9]) << 8
                let attrs = body[(h + 12)...]
                guard state & unusable == 0, let name = interfaceName(ifindex),
                      let dst = Netlink.attribute(ndaDst, in: attrs).flatMap({ address(family, $0) }),
                      let ll = Netlink.attribute(ndaLladdr, in: attrs), ll.count == 6 else { return }
                let b = Array(ll)
                neighbours.append(.init(address: dst, mac: MACAddress(b[0], b[1], b[2], b[3], b[4], b[5]), interface: name))
            }
        }
        return KernelRoutes(routes: routes, neighbours: neighbours)
    }

    static func u32(_ b: ArraySlice<UInt8>) -> UInt32? {
        guard b.count >= 4 else { return nil }
        let i = b.startIndex
        return UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }

    static func address(_ family: UInt8, _ b: ArraySlice<UInt8>) -> IPAddress? {
        let a = Array(b)
        if family == UInt8(AF_INET), a.count == 4 {
            return .v4(IPv4Address(UInt32(a[0]) << 24 | UInt32(a[1]) << 16 | UInt32(a[2]) << 8 | UInt32(a[3])))
        }
        if family == UInt8(AF_INET6), a.count == 16 {
            return .v6(a.withUnsafeBytes { IPv6Address(reading: $0.baseAddress!) })
        }
        return nil
    }

    static func interfaceName(_ index: UInt32) -> String? {
        var buf = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
        guard if_indextoname(index, &buf) != nil else { return nil }
        return String(cString: buf)
    }

    /// One NLM_F_DUMP request; `each` gets every reply message's type and body.
    static func dump(_ fd: Int32, type: UInt16, header: [UInt8], each: (UInt16, ArraySlice<UInt8>) -> Void) throws(LanesError) {
        var msg: [UInt8] = []
        let total = UInt32(16 + header.count)
        let seq = UInt32(truncatingIfNeeded: Int(type) &* 7919 &+ Int(header[0]))
        withUnsafeBytes(of: total.littleEndian) { msg.append(contentsOf: $0) }
        withUnsafeBytes(of: type.littleEndian) { msg.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt16(NLM_F_REQUEST | NLM_F_DUMP).littleEndian) { msg.append(contentsOf: $0) }
        withUnsafeBytes(of: seq.littleEndian) { msg.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(0)) { msg.append(contentsOf: $0) }
        msg.append(contentsOf: header)
        _ = try syscall("send rtnetlink dump request") { msg.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) } }
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = try syscall("receive rtnetlink dump") { buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) } }
            var i = 0
            while i + 16 <= n {
                let len = Int(u32(buf[i..<(i + 4)]) ?? 0)
                let t = UInt16(buf[i + 4]) | UInt16(buf[i + 5]) << 8
                guard len >= 16, i + len <= n else { return }
                if t == UInt16(NLMSG_DONE) { return }
                if t == UInt16(NLMSG_ERROR) {
                    let err = buf.count >= i + 20 ? Int32(bitPattern: u32(buf[(i + 16)..<(i + 20)]) ?? 0) : 0
                    throw LanesError.system("rtnetlink dump (type \(type))", errno: -err)
                }
                each(t, buf[(i + 16)..<(i + len)])
                i += (len + 3) & ~3
            }
        }
    }
}

extension RouteNetlink {
    /// An rtnetlink socket subscribed to route (IPv4, IPv6), neighbour and link
    /// changes; closes itself.
    public final class Changes {
        let fd: Int32

        /// Subscribes: no change after this returns is missed.
        public init() throws(LanesError) {
            fd = try syscall("socket(AF_NETLINK, NETLINK_ROUTE) for route changes") {
                socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), NETLINK_ROUTE)
            }
            var addr = sockaddr_nl()
            addr.nl_family = sa_family_t(AF_NETLINK)
            // RTMGRP_LINK | RTMGRP_NEIGH | RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE
            addr.nl_groups = 0x1 | 0x4 | 0x40 | 0x400
            let fd = self.fd
            do {
                _ = try syscall("bind rtnetlink to route, neighbour and link changes") {
                    withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_nl>.size)) } }
                }
            } catch {
                close(fd)
                throw error
            }
        }

        deinit { close(fd) }

        /// Waits up to `timeoutMs` for change messages; true (and all of them
        /// read) if any came.
        public func wait(timeoutMs: Int32) -> Bool {
            var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&pfd, 1, timeoutMs) > 0 else { return false }
            return drain()
        }

        /// Reads every message waiting; true if there was one.
        @discardableResult
        public func drain() -> Bool {
            var buf = [UInt8](repeating: 0, count: 1 << 16)
            var any = false
            while buf.withUnsafeMutableBytes({ recv(fd, $0.baseAddress, $0.count, 0) }) > 0 { any = true }
            return any
        }
    }
}
