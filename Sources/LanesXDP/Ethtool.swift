import CLanes
import Glibc
import LanesPacket

/// ethtool ioctls (SIOCETHTOOL) on one interface of the current namespace.
/// A query the driver does not support returns nil: a missing feature is a fact
/// to report, not an error.
public final class Ethtool {
    let fd: Int32
    public let name: String

    public init(_ name: String) throws(LanesError) {
        guard !name.isEmpty, name.utf8.count < Int(IF_NAMESIZE) else {
            throw LanesError("bad interface name '\(name)'", fix: "names are 1-15 characters")
        }
        self.name = name
        fd = try syscall("socket(AF_INET) for ethtool") { socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
    }

    deinit { close(fd) }

    /// Runs one ethtool command over `buffer` (which starts with the u32 cmd).
    /// Returns 0 or the errno.
    func call(_ buffer: UnsafeMutableRawPointer) -> Int32 {
        var ifr = ifreq()
        withUnsafeMutableBytes(of: &ifr.ifr_ifrn.ifrn_name) { dst in
            let bytes = Array(name.utf8)
            for i in 0..<min(bytes.count, dst.count - 1) { dst[i] = bytes[i] }
        }
        ifr.ifr_ifru.ifru_data = buffer.assumingMemoryBound(to: CChar.self)
        let r = ioctl(fd, UInt(SIOCETHTOOL), &ifr)
        return r < 0 ? lanes_errno() : 0
    }

    public struct DriverInfo: Sendable, Codable {
        public var driver: String
        public var version: String
        public var firmware: String
        public var busInfo: String
        public var statsCount: Int
    }

    public func driverInfo() throws(LanesError) -> DriverInfo {
        var info = ethtool_drvinfo()
        info.cmd = UInt32(ETHTOOL_GDRVINFO)
        let e = call(&info)
        if e == ENODEV {
            throw LanesError("interface '\(name)' not found", errno: e, fix: "see 'ip link', or pass --netns NS")
        }
        if e != 0 { throw LanesError.system("ETHTOOL_GDRVINFO on \(name)", errno: e) }
        return DriverInfo(driver: cString(&info.driver), version: cString(&info.version),
                          firmware: cString(&info.fw_version), busInfo: cString(&info.bus_info),
                          statsCount: Int(info.n_stats))
    }

    public struct Channels: Sendable, Codable, Equatable {
        public var rx, tx, combined, other: Int
        public var maxRx, maxTx, maxCombined, maxOther: Int
        public init(rx: Int, tx: Int, combined: Int, other: Int, maxRx: Int, maxTx: Int, maxCombined: Int, maxOther: Int) {
            (self.rx, self.tx, self.combined, self.other) = (rx, tx, combined, other)
            (self.maxRx, self.maxTx, self.maxCombined, self.maxOther) = (maxRx, maxTx, maxCombined, maxOther)
        }
    }

    public func channels() -> Channels? {
        var ch = ethtool_channels()
        ch.cmd = UInt32(ETHTOOL_GCHANNELS)
        guard call(&ch) == 0 else { return nil }
        return Channels(rx: Int(ch.rx_count), tx: Int(ch.tx_count), combined: Int(ch.combined_count),
                        other: Int(ch.other_count), maxRx: Int(ch.max_rx), maxTx: Int(ch.max_tx),
                        maxCombined: Int(ch.max_combined), maxOther: Int(ch.max_other))
    }

    public struct RSS: Sendable, Codable, Equatable {
        /// ETH_RSS_HASH_* bit: 1 toeplitz, 2 xor, 4 crc32.
        public var hashFunction: UInt8
        public var key: [UInt8]
        public var indirection: [UInt32]
        public var hashFunctionName: String {
            switch hashFunction { case 1: "toeplitz"; case 2: "xor"; case 4: "crc32"; default: "unknown(\(hashFunction))" }
        }
        public init(hashFunction: UInt8, key: [UInt8], indirection: [UInt32]) {
            self.hashFunction = hashFunction
            self.key = key
            self.indirection = indirection
        }
        /// The lines `lanes info` prints: a key the driver does not report, or an
        /// empty table, is said so, never printed as a blank.
        public var summaryLines: [String] {
            let keyText = key.isEmpty ? "key not reported by the driver" : "key " + key.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined(separator: ":")
            let table = indirection.isEmpty ? "not reported by the driver"
                : "\(indirection.count) entries: \(indirection.prefix(16).map(String.init).joined(separator: " "))\(indirection.count > 16 ? " ..." : "")"
            return ["rss           \(hashFunctionName), \(keyText)", "indirection   \(table)"]
        }
    }

    /// RSS key and indirection table (ETHTOOL_GRSSH), where the driver has them.
    public func rss() -> RSS? {
        let header = MemoryLayout<ethtool_rxfh>.size
        var probe = ethtool_rxfh()
        probe.cmd = UInt32(ETHTOOL_GRSSH)
        guard call(&probe) == 0 else { return nil }
        let indirCount = Int(probe.indir_size), keySize = Int(probe.key_size)
        let size = header + indirCount * 4 + keySize
        let buf = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
        defer { buf.deallocate() }
        buf.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        var full = probe
        full.cmd = UInt32(ETHTOOL_GRSSH)
        buf.storeBytes(of: full, as: ethtool_rxfh.self)
        guard call(buf) == 0 else { return nil }
        let got = buf.load(as: ethtool_rxfh.self)
        let table = (0..<indirCount).map { buf.load(fromByteOffset: header + $0 * 4, as: UInt32.self) }
        let key = (0..<keySize).map { buf.load(fromByteOffset: header + indirCount * 4 + $0, as: UInt8.self) }
        return RSS(hashFunction: got.hfunc, key: key, indirection: table)
    }

    /// Which header fields RSS hashes for a flow type (ETHTOOL_GRXFH): RXH_* bits
    /// (RXH_IP_SRC 0x10, RXH_IP_DST 0x20, RXH_L4_B_0_1 0x40, RXH_L4_B_2_3 0x80);
    /// nil where the driver does not say. `flowType`: TCP_V4_FLOW 1, UDP_V4_FLOW 2,
    /// TCP_V6_FLOW 5, UDP_V6_FLOW 6.
    public func rxFlowHash(flowType: UInt32) -> UInt64? {
        var n = ethtool_rxnfc()
        n.cmd = UInt32(ETHTOOL_GRXFH)
        n.flow_type = flowType
        guard call(&n) == 0 else { return nil }
        return n.data
    }

    /// Whether RSS hashes the ports of TCP and UDP over IPv4 and IPv6 (both port
    /// halves in ETHTOOL_GRXFH); a driver that does not say is taken to (the
    /// kernel's default for TCP, and virtio's for UDP). igb hashes UDP by its
    /// addresses only until 'ethtool -N IF rx-flow-hash udp4 sdfn'.
    public func rssPortHashing() -> RSSPortHashing {
        func ports(_ t: UInt32) -> Bool { rxFlowHash(flowType: t).map { $0 & 0xc0 == 0xc0 } ?? true }
        return RSSPortHashing(tcp4: ports(1), udp4: ports(2), tcp6: ports(5), udp6: ports(6))
    }

    /// Driver statistics (ETHTOOL_GSTRINGS + ETHTOOL_GSTATS), by name.
    public func statistics() -> [(name: String, value: UInt64)] {
        guard let count = try? driverInfo().statsCount, count > 0 else { return [] }
        let strLen = Int(ETH_GSTRING_LEN)
        let sHeader = MemoryLayout<ethtool_gstrings>.size
        let sbuf = UnsafeMutableRawPointer.allocate(byteCount: sHeader + count * strLen, alignment: 8)
        defer { sbuf.deallocate() }
        var gs = ethtool_gstrings()
        gs.cmd = UInt32(ETHTOOL_GSTRINGS)
        gs.string_set = UInt32(ETH_SS_STATS.rawValue)
        gs.len = UInt32(count)
        sbuf.storeBytes(of: gs, as: ethtool_gstrings.self)
        guard call(sbuf) == 0 else { return [] }
        let vHeader = MemoryLayout<ethtool_stats>.size
        let vbuf = UnsafeMutableRawPointer.allocate(byteCount: vHeader + count * 8, alignment: 8)
        defer { vbuf.deallocate() }
        var st = ethtool_stats()
        st.cmd = UInt32(ETHTOOL_GSTATS)
        st.n_stats = UInt32(count)
        vbuf.storeBytes(of: st, as: ethtool_stats.self)
        guard call(vbuf) == 0 else { return [] }
        return (0..<count).map { i in
            let p = (sbuf + sHeader + i * strLen).assumingMemoryBound(to: UInt8.self)
            let n = strnlen(UnsafeRawPointer(p).assumingMemoryBound(to: CChar.self), strLen)
            let name = String(decoding: UnsafeBufferPointer(start: p, count: n), as: UTF8.self)
            return (name, vbuf.load(fromByteOffset: vHeader + i * 8, as: UInt64.self))
        }
    }
}

func cString<T>(_ tuple: inout T) -> String {
    withUnsafeBytes(of: &tuple) { raw in
        let n = raw.firstIndex(of: 0) ?? raw.count
        return String(decoding: raw.prefix(n), as: UTF8.self)
    }
}
