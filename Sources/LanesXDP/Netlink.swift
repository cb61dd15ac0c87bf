import CLanes
import Glibc

/// The XDP features a driver advertises, read over generic netlink from the
/// kernel's "netdev" family (NETDEV_CMD_DEV_GET, attribute xdp-features).
/// libbpf 1.1 predates bpf_xdp_query's feature_flags, so Lanes asks the kernel itself.
public struct XDPFeatures: OptionSet, Sendable, Codable {
    public let rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }
    /// NETDEV_XDP_ACT_BASIC: XDP_PASS/DROP/TX in the driver (native XDP).
    public static let basic = XDPFeatures(rawValue: 1 << 0)
    /// NETDEV_XDP_ACT_REDIRECT: XDP_REDIRECT from the driver.
    public static let redirect = XDPFeatures(rawValue: 1 << 1)
    /// NETDEV_XDP_ACT_NDO_XMIT: can be the target of a redirect.
    public static let redirectTarget = XDPFeatures(rawValue: 1 << 2)
    /// NETDEV_XDP_ACT_XSK_ZEROCOPY: AF_XDP zero-copy.
    public static let zeroCopy = XDPFeatures(rawValue: 1 << 3)
    /// NETDEV_XDP_ACT_HW_OFFLOAD.
    public static let hardwareOffload = XDPFeatures(rawValue: 1 << 4)
    /// NETDEV_XDP_ACT_RX_SG: multi-buffer on receive.
    public static let multiBuffer = XDPFeatures(rawValue: 1 << 5)
    /// NETDEV_XDP_ACT_NDO_XMIT_SG: multi-buffer as a redirect target.
    public static let multiBufferTarget = XDPFeatures(rawValue: 1 << 6)

    public var names: [String] {
        let all: [(XDPFeatures, String)] = [(.basic, "native"), (.redirect, "redirect"), (.redirectTarget, "redirect-target"),
                                            (.zeroCopy, "zero-copy"), (.hardwareOffload, "offload"),
                                            (.multiBuffer, "multi-buffer"), (.multiBufferTarget, "multi-buffer-target")]
        return all.filter { contains($0.0) }.map(\.1)
    }

    /// nil when the kernel has no netdev family (before 6.3) or the query fails.
    public static func query(ifindex: UInt32) -> XDPFeatures? {
        guard let nl = try? GenericNetlink() else { return nil }
        defer { nl.close() }
        guard let family = nl.familyID("netdev") else { return nil }
        var attrs: [UInt8] = []
        Netlink.appendAttribute(&attrs, type: 1 /* NETDEV_A_DEV_IFINDEX */, value: ifindex)
        guard let reply = nl.request(family: family, command: 1 /* NETDEV_CMD_DEV_GET */, attributes: attrs) else { return nil }
        guard let raw = Netlink.attribute(3 /* NETDEV_A_DEV_XDP_FEATURES */, in: reply), raw.count >= 8 else { return nil }
        return XDPFeatures(rawValue: raw.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
    }
}

enum Netlink {
    static func appendAttribute(_ buf: inout [UInt8], type: UInt16, bytes: [UInt8]) {
        let len = UInt16(4 + bytes.count)
        withUnsafeBytes(of: len.littleEndian) { buf.append(contentsOf: $0) }
        withUnsafeBytes(of: type.littleEndian) { buf.append(contentsOf: $0) }
        buf.append(contentsOf: bytes)
        while buf.count % 4 != 0 { buf.append(0) }
    }

    static func appendAttribute<T: FixedWidthInteger>(_ buf: inout [UInt8], type: UInt16, value: T) {
        appendAttribute(&buf, type: type, bytes: withUnsafeBytes(of: value.littleEndian) { Array($0) })
    }

    /// The payload of the first attribute of `type` in a run of attributes.
    static func attribute(_ type: UInt16, in attrs: ArraySlice<UInt8>) -> ArraySlice<UInt8>? {
        var i = attrs.startIndex
        while i + 4 <= attrs.endIndex {
            let len = Int(UInt16(attrs[i]) | UInt16(attrs[i + 1]) << 8)
            let t = (UInt16(attrs[i + 2]) | UInt16(attrs[i + 3]) << 8) & 0x3fff
            guard len >= 4, i + len <= attrs.endIndex else { return nil }
            if t == type { return attrs[(i + 4)..<(i + len)] }
            i += (len + 3) & ~3
        }
        return nil
    }
}

/// One generic netlink socket; each request waits for its one reply.
final class GenericNetlink {
    let fd: Int32
    var seq: UInt32 = 1

    init() throws(LanesError) {
        fd = try syscall("socket(AF_NETLINK, NETLINK_GENERIC)") {
            socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), NETLINK_GENERIC)
        }
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    func close() { Glibc.close(fd) }

    /// Sends one request and returns the attributes of the reply, or nil on error.
    func request(family: UInt16, command: UInt8, attributes: [UInt8]) -> ArraySlice<UInt8>? {
        var msg: [UInt8] = []
        let total = UInt32(16 + 4 + attributes.count)
        seq &+= 1
        withUnsafeBytes(of: total.littleEndian) { msg.append(contentsOf: $0) }
        withUnsafeBytes(of: family.littleEndian) { msg.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt16(NLM_F_REQUEST).littleEndian) { msg.append(contentsOf: $0) }
        withUnsafeBytes(of: seq.littleEndian) { msg.append(contentsOf: $0) }
        withUnsafeBytes(of: UInt32(0)) { msg.append(contentsOf: $0) }
        msg.append(contentsOf: [command, 1, 0, 0])
        msg.append(contentsOf: attributes)
        var addr = sockaddr_nl()
        addr.nl_family = sa_family_t(AF_NETLINK)
        let sent = msg.withUnsafeBytes { m in
            withUnsafePointer(to: &addr) { a in
                a.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, m.baseAddress, m.count, 0, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
                }
            }
        }
        guard sent == msg.count else { return nil }
        var reply = [UInt8](repeating: 0, count: 16384)
        let n = reply.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n >= 20 else { return nil }
        let type = UInt16(reply[4]) | UInt16(reply[5]) << 8
        if type == UInt16(NLMSG_ERROR) { return nil }
        let len = min(Int(n), Int(UInt32(reply[0]) | UInt32(reply[1]) << 8 | UInt32(reply[2]) << 16 | UInt32(reply[3]) << 24))
        return reply[20..<len]
    }

    func familyID(_ name: String) -> UInt16? {
        var attrs: [UInt8] = []
        Netlink.appendAttribute(&attrs, type: UInt16(CTRL_ATTR_FAMILY_NAME), bytes: Array(name.utf8) + [0])
        guard let reply = request(family: UInt16(GENL_ID_CTRL), command: UInt8(CTRL_CMD_GETFAMILY), attributes: attrs),
              let id = Netlink.attribute(UInt16(CTRL_ATTR_FAMILY_ID), in: reply), id.count >= 2 else { return nil }
        return UInt16(id[id.startIndex]) | UInt16(id[id.startIndex + 1]) << 8
    }
}
