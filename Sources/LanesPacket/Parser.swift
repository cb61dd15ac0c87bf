/// Zero-copy parsing of a frame's bytes. Each header's length is checked once,
/// then its fields are read without further checks. Malformed input never traps:
/// the result says which layer parsing stopped at, where, and why.

/// The layers found in a packet.
public struct PacketLayers: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let ethernet = PacketLayers(rawValue: 1 << 0)
    public static let vlan = PacketLayers(rawValue: 1 << 1)
    public static let qinq = PacketLayers(rawValue: 1 << 2)
    public static let arp = PacketLayers(rawValue: 1 << 3)
    public static let ipv4 = PacketLayers(rawValue: 1 << 4)
    public static let ipv6 = PacketLayers(rawValue: 1 << 5)
    public static let ipv6Extensions = PacketLayers(rawValue: 1 << 6)
    public static let fragment = PacketLayers(rawValue: 1 << 7)
    public static let udp = PacketLayers(rawValue: 1 << 8)
    public static let tcp = PacketLayers(rawValue: 1 << 9)
    public static let icmpv4 = PacketLayers(rawValue: 1 << 10)
    public static let icmpv6 = PacketLayers(rawValue: 1 << 11)
    public static let vxlan = PacketLayers(rawValue: 1 << 12)
    public static let gre = PacketLayers(rawValue: 1 << 13)

    public static let named: [(PacketLayers, String)] = [
        (.ethernet, "eth"), (.vlan, "vlan"), (.qinq, "qinq"), (.arp, "arp"), (.ipv4, "ipv4"), (.ipv6, "ipv6"),
        (.ipv6Extensions, "ipv6-ext"), (.fragment, "fragment"), (.udp, "udp"), (.tcp, "tcp"),
        (.icmpv4, "icmp"), (.icmpv6, "icmpv6"), (.vxlan, "vxlan"), (.gre, "gre"),
    ]
    public var names: [String] { PacketLayers.named.filter { contains($0.0) }.map(\.1) }
}

/// Why parsing stopped before the end of the headers.
public enum ParseStop: String, Sendable, Equatable {
    case truncatedEthernet = "ethernet header truncated"
    case truncatedVLAN = "vlan tag truncated"
    case tooManyVLANs = "more than two vlan tags"
    case truncatedARP = "arp truncated"
    case truncatedIPv4 = "ipv4 header truncated"
    case badIPv4Version = "ipv4 bad version"
    case badIHL = "ipv4 ihl below 5"
    case ipv4OptionsPastFrame = "ipv4 options past the frame"
    case ipv4TotalLengthTooShort = "ipv4 total length below header length"
    case ipv4TotalLengthPastFrame = "ipv4 total length past the frame"
    case truncatedIPv6 = "ipv6 header truncated"
    case badIPv6Version = "ipv6 bad version"
    case ipv6PayloadPastFrame = "ipv6 payload length past the frame"
    case extensionChainPastFrame = "ipv6 extension header chain runs past the frame"
    case tooManyExtensions = "more than 8 ipv6 extension headers"
    case truncatedUDP = "udp header truncated"
    case badUDPLength = "udp length inconsistent with ip length"
    case truncatedTCP = "tcp header truncated"
    case badTCPOffset = "tcp data offset below 5"
    case tcpOptionsPastSegment = "tcp options past the segment"
    case badTCPOption = "tcp option length bad"
    case truncatedICMP = "icmp header truncated"
    case truncatedVXLAN = "vxlan header truncated"
    case truncatedGRE = "gre header truncated"
    /// A packet over several buffers (AF_XDP multi-buffer) whose headers do not all lie in the first.
    case headersPastFirstBuffer = "headers past the first buffer"
}

/// TCP options seen.
public struct TCPOptions: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let mss = TCPOptions(rawValue: 1)
    public static let windowScale = TCPOptions(rawValue: 2)
    public static let sackPermitted = TCPOptions(rawValue: 4)
    public static let sack = TCPOptions(rawValue: 8)
    public static let timestamps = TCPOptions(rawValue: 16)
    public static let other = TCPOptions(rawValue: 32)
}

/// What parsing found: offsets and fields, no copies of the packet.
public struct ParsedPacket: Sendable {
    public var length = 0
    public var layers: PacketLayers = []
    public var stop: ParseStop? = nil
    public var stopOffset = 0
    public var isMalformed: Bool { stop != nil }

    public var dstMAC = 0, srcMAC = 6 // offsets
    public var etherType: UInt16 = 0
    public var vlanCount = 0
    public var vlanIDs: (UInt16, UInt16) = (0, 0)
    public var vlanTPIDs: (UInt16, UInt16) = (0, 0)
    public var vlanList: [UInt16] { Array([vlanIDs.0, vlanIDs.1].prefix(vlanCount)) }

    public var l3Offset = 0
    public var ipv4Src: UInt32 = 0, ipv4Dst: UInt32 = 0
    public var ipv4HeaderLength = 0
    public var ipv4ID: UInt16 = 0
    public var ttl: UInt8 = 0
    /// The transport protocol after any IPv6 extension headers.
    public var ipProtocol: UInt8 = 0
    /// IPv4 total length, or IPv6 payload length + 40.
    public var ipLength = 0
    public var ipv4ChecksumValid: Bool? = nil
    public var fragmentOffset: UInt16 = 0 // 8-byte units
    public var moreFragments = false
    public var ipv6Src = IPv6Address(high: 0, low: 0), ipv6Dst = IPv6Address(high: 0, low: 0)
    public var ipv6FlowLabel: UInt32 = 0
    public var extensionCount = 0
    /// Extension header types in order, 8 bits each (first in the low byte).
    public var extensionTypes: UInt64 = 0
    public var extensionList: [UInt8] { (0..<extensionCount).map { UInt8(truncatingIfNeeded: extensionTypes >> (8 * UInt64($0))) } }

    public var arpOperation: UInt16 = 0
    public var arpSenderIP: UInt32 = 0, arpTargetIP: UInt32 = 0

    public var l4Offset = 0
    public var srcPort: UInt16 = 0, dstPort: UInt16 = 0
    public var udpLength = 0
    public var tcpFlags: UInt8 = 0
    public var tcpSeq: UInt32 = 0, tcpAck: UInt32 = 0
    public var tcpHeaderLength = 0
    public var tcpOptions: TCPOptions = []
    public var tcpMSS: UInt16 = 0
    public var tcpWindowScale: UInt8 = 0
    public var icmpType: UInt8 = 0, icmpCode: UInt8 = 0
    public var l4ChecksumValid: Bool? = nil
    public var vxlanVNI: UInt32 = 0
    public var greProtocol: UInt16 = 0

    public var payloadOffset = 0
    public var payloadLength = 0

    public init() {}
}

public enum PacketParser {
    @inline(__always) static func be16(_ p: UnsafeRawPointer, _ o: Int) -> UInt16 { UInt16(bigEndian: p.loadUnaligned(fromByteOffset: o, as: UInt16.self)) }
    @inline(__always) static func be32(_ p: UnsafeRawPointer, _ o: Int) -> UInt32 { UInt32(bigEndian: p.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
    @inline(__always) static func u8(_ p: UnsafeRawPointer, _ o: Int) -> UInt8 { p.load(fromByteOffset: o, as: UInt8.self) }

    /// Parses an Ethernet frame. With `verifyChecksums`, IPv4 header and L4
    /// checksums are checked (not for fragments).
    public static func parse(_ bytes: UnsafeRawBufferPointer, verifyChecksums: Bool = false) -> ParsedPacket {
        parse(head: bytes, length: bytes.count, verifyChecksums: verifyChecksums, sum: nil)
    }

    /// Parses a packet spread over buffers (AF_XDP multi-buffer): `head` is its
    /// first buffer, where every header must lie (else it stops with
    /// `.headersPastFirstBuffer`), `length` the whole packet's. Lengths are checked
    /// against `length`; nothing past `head` is read. A checksum that covers bytes
    /// past `head` is checked through `sum` (the ones'-complement sum of the
    /// packet's bytes `from ..< from + count`, added to `initial`), or left nil without it.
    public static func parse(head bytes: UnsafeRawBufferPointer, length total: Int, verifyChecksums: Bool = false,
                             sum: ((_ from: Int, _ count: Int, _ initial: UInt64) -> UInt64)?) -> ParsedPacket {
        var r = ParsedPacket()
        r.length = total
        let h = min(bytes.count, total)
        guard let p = bytes.baseAddress, r.length >= 14 else {
            r.stop = .truncatedEthernet
            return r
        }
        guard h >= 14 else { return stopped(&r, .headersPastFirstBuffer, 0) }
        let b = Bytes(p: p, h: h, sum: sum)
        let n = r.length
        r.layers.insert(.ethernet)
        var type = be16(p, 12)
        var off = 14
        while type == 0x8100 || type == 0x88a8 {
            guard r.vlanCount < 2 else { return stopped(&r, .tooManyVLANs, off) }
            guard off + 4 <= n else { return stopped(&r, .truncatedVLAN, off) }
            guard off + 4 <= h else { return stopped(&r, .headersPastFirstBuffer, off) }
            let id = be16(p, off) & 0x0fff
            if r.vlanCount == 0 { r.vlanIDs.0 = id; r.vlanTPIDs.0 = type } else { r.vlanIDs.1 = id; r.vlanTPIDs.1 = type }
            r.vlanCount += 1
            type = be16(p, off + 2)
            off += 4
        }
        if r.vlanCount > 0 { r.layers.insert(.vlan) }
        if r.vlanCount > 1 { r.layers.insert(.qinq) }
        r.etherType = type
        r.l3Offset = off
        r.payloadOffset = off
        r.payloadLength = n - off
        switch type {
        case 0x0806: return parseARP(b, n, off, &r)
        case 0x0800: return parseIPv4(b, n, off, &r, verifyChecksums)
        case 0x86dd: return parseIPv6(b, n, off, &r, verifyChecksums)
        default: return r
        }
    }

    /// The bytes a parse may read: the first buffer's `h`; and a checksum over any range.
    struct Bytes {
        let p: UnsafeRawPointer
        let h: Int
        let sum: ((Int, Int, UInt64) -> UInt64)?
        /// Whether bytes `off ..< end` lie in the first buffer.
        @inline(__always) func has(_ end: Int) -> Bool { end <= h }
        /// The ones'-complement sum of bytes `off ..< off + count`, nil when they run
        /// past the first buffer and no `sum` reaches them.
        @inline(__always) func checksum(_ off: Int, _ count: Int, initial: UInt64 = 0) -> UInt64? {
            if off + count <= h { return Checksum.sum(p + off, count: count, initial: initial) }
            return sum?(off, count, initial)
        }
    }

    @inline(__always)
    static func stopped(_ r: inout ParsedPacket, _ why: ParseStop, _ at: Int) -> ParsedPacket {
        r.stop = why
        r.stopOffset = at
        return r
    }

    static func parseARP(_ b: Bytes, _ n: Int, _ off: Int, _ r: inout ParsedPacket) -> ParsedPacket {
        let p = b.p
        guard off + 28 <= n else { return stopped(&r, .truncatedARP, off) }
        guard b.has(off + 28) else { return stopped(&r, .headersPastFirstBuffer, off) }
        r.layers.insert(.arp)
        r.arpOperation = be16(p, off + 6)
        r.arpSenderIP = be32(p, off + 14)
        r.arpTargetIP = be32(p, off + 24)
        r.payloadOffset = off + 28
        r.payloadLength = n - off - 28
        return r
    }

    static func parseIPv4(_ b: Bytes, _ n: Int, _ off: Int, _ r: inout ParsedPacket, _ verify: Bool) -> ParsedPacket {
        let p = b.p
        guard off + 20 <= n else { return stopped(&r, .truncatedIPv4, off) }
        guard b.has(off + 20) else { return stopped(&r, .headersPastFirstBuffer, off) }
        let vihl = u8(p, off)
        guard vihl >> 4 == 4 else { return stopped(&r, .badIPv4Version, off) }
        let hl = Int(vihl & 15) * 4
        guard hl >= 20 else { return stopped(&r, .badIHL, off) }
        r.layers.insert(.ipv4)
        r.ipv4HeaderLength = hl
        let total = Int(be16(p, off + 2))
        r.ipLength = total
        r.ipv4ID = be16(p, off + 4)
        let frag = be16(p, off + 6)
        r.fragmentOffset = frag & 0x1fff
        r.moreFragments = frag & 0x2000 != 0
        r.ttl = u8(p, off + 8)
        r.ipProtocol = u8(p, off + 9)
        r.ipv4Src = be32(p, off + 12)
        r.ipv4Dst = be32(p, off + 16)
        guard off + hl <= n else { return stopped(&r, .ipv4OptionsPastFrame, off) }
        guard b.has(off + hl) else { return stopped(&r, .headersPastFirstBuffer, off) }
        if verify { r.ipv4ChecksumValid = Checksum.fold(Checksum.sum(p + off, count: hl)) == 0xffff }
        guard total >= hl else { return stopped(&r, .ipv4TotalLengthTooShort, off) }
        guard off + total <= n else { return stopped(&r, .ipv4TotalLengthPastFrame, off) }
        let end = off + total
        r.payloadOffset = off + hl
        r.payloadLength = total - hl
        if r.fragmentOffset != 0 || r.moreFragments { r.layers.insert(.fragment) }
        if r.fragmentOffset != 0 { return r } // no transport header in later fragments
        let pseudo = Checksum.pseudoIPv4(src: r.ipv4Src, dst: r.ipv4Dst, proto: r.ipProtocol, length: total - hl)
        return parseTransport(b, end, off + hl, r.ipProtocol, &r, verify, complete: !r.moreFragments, pseudo, isV6: false)
    }

    static func parseIPv6(_ b: Bytes, _ n: Int, _ off: Int, _ r: inout ParsedPacket, _ verify: Bool) -> ParsedPacket {
        let p = b.p
        guard off + 40 <= n else { return stopped(&r, .truncatedIPv6, off) }
        guard b.has(off + 40) else { return stopped(&r, .headersPastFirstBuffer, off) }
        let vtf = be32(p, off)
        guard vtf >> 28 == 6 else { return stopped(&r, .badIPv6Version, off) }
        r.layers.insert(.ipv6)
        r.ipv6FlowLabel = vtf & 0xfffff
        let payload = Int(be16(p, off + 4))
        r.ipLength = payload + 40
        var next = u8(p, off + 6)
        r.ttl = u8(p, off + 7)
        r.ipv6Src = IPv6Address(reading: p + off + 8)
        r.ipv6Dst = IPv6Address(reading: p + off + 24)
        r.ipProtocol = next
        guard off + 40 + payload <= n else { return stopped(&r, .ipv6PayloadPastFrame, off) }
        let end = off + 40 + payload
        var cur = off + 40
        var fragmented = false
        // hop-by-hop 0, routing 43, fragment 44, ESP 50 (opaque), AH 51, destination options 60
        while next == 0 || next == 43 || next == 44 || next == 51 || next == 60 {
            guard r.extensionCount < 8 else { return stopped(&r, .tooManyExtensions, cur) }
            guard cur + 8 <= end else { return stopped(&r, .extensionChainPastFrame, cur) }
            guard b.has(cur + 8) else { return stopped(&r, .headersPastFirstBuffer, cur) }
            let len: Int
            switch next {
            case 44:
                len = 8
                let fo = be16(p, cur + 2)
                r.fragmentOffset = fo >> 3
                r.moreFragments = fo & 1 != 0
                r.layers.insert(.fragment)
                fragmented = r.fragmentOffset != 0 || r.moreFragments
            case 51: len = (Int(u8(p, cur + 1)) + 2) * 4
            default: len = (Int(u8(p, cur + 1)) + 1) * 8
            }
            guard cur + len <= end else { return stopped(&r, .extensionChainPastFrame, cur) }
            guard b.has(cur + len) else { return stopped(&r, .headersPastFirstBuffer, cur) }
            r.extensionTypes |= UInt64(next) << (8 * UInt64(r.extensionCount))
            r.extensionCount += 1
            r.layers.insert(.ipv6Extensions)
            next = u8(p, cur)
            cur += len
        }
        r.ipProtocol = next
        r.payloadOffset = cur
        r.payloadLength = end - cur
        if r.fragmentOffset != 0 { return r }
        let pseudo = Checksum.sum(p + off + 8, count: 32) &+ UInt64(next) &+ UInt64(end - cur)
        return parseTransport(b, end, cur, next, &r, verify, complete: !fragmented, pseudo, isV6: true)
    }

    /// `verifyRequested`: check checksums; `complete`: the datagram is whole here
    /// (not a first fragment), so a checksum over it can be checked.
    static func parseTransport(_ b: Bytes, _ end: Int, _ off: Int, _ proto: UInt8, _ r: inout ParsedPacket,
                               _ verifyRequested: Bool, complete: Bool, _ pseudo: UInt64, isV6: Bool) -> ParsedPacket {
        let p = b.p
        let verify = verifyRequested && complete
        /// The checksum over `count` bytes from `off` folds to all ones (nil: not reachable).
        func valid(_ count: Int, _ initial: UInt64) -> Bool? { b.checksum(off, count, initial: initial).map { Checksum.fold($0) == 0xffff } }
        r.l4Offset = off
        let avail = end - off
        switch proto {
        case 17:
            guard avail >= 8 else { return stopped(&r, .truncatedUDP, off) }
            guard b.has(off + 8) else { return stopped(&r, .headersPastFirstBuffer, off) }
            r.layers.insert(.udp)
            r.srcPort = be16(p, off)
            r.dstPort = be16(p, off + 2)
            r.udpLength = Int(be16(p, off + 4))
            guard r.udpLength >= 8, r.udpLength <= avail else { return stopped(&r, .badUDPLength, off) }
            let ck = be16(p, off + 6)
            if verifyRequested && isV6 && ck == 0 {
                r.l4ChecksumValid = false // RFC 8200 8.1: a zero UDP checksum is not allowed over IPv6
            } else if verify {
                r.l4ChecksumValid = (ck == 0 && !isV6) ? nil : valid(r.udpLength, pseudo)
            }
            r.payloadOffset = off + 8
            r.payloadLength = r.udpLength - 8
            if r.dstPort == 4789 {
                guard r.payloadLength >= 8 else { return stopped(&r, .truncatedVXLAN, off + 8) }
                guard b.has(off + 16) else { return stopped(&r, .headersPastFirstBuffer, off + 8) }
                r.layers.insert(.vxlan)
                r.vxlanVNI = be32(p, off + 12) >> 8
                r.payloadOffset += 8
                r.payloadLength -= 8
            }
        case 6:
            guard avail >= 20 else { return stopped(&r, .truncatedTCP, off) }
            guard b.has(off + 20) else { return stopped(&r, .headersPastFirstBuffer, off) }
            r.srcPort = be16(p, off)
            r.dstPort = be16(p, off + 2)
            r.tcpSeq = be32(p, off + 4)
            r.tcpAck = be32(p, off + 8)
            let hl = Int(u8(p, off + 12) >> 4) * 4
            r.tcpFlags = u8(p, off + 13)
            guard hl >= 20 else { return stopped(&r, .badTCPOffset, off) }
            guard hl <= avail else { return stopped(&r, .tcpOptionsPastSegment, off) }
            guard b.has(off + hl) else { return stopped(&r, .headersPastFirstBuffer, off) }
            r.layers.insert(.tcp)
            r.tcpHeaderLength = hl
            var o = off + 20
            let oend = off + hl
            while o < oend {
                let kind = u8(p, o)
                if kind == 0 { break }
                if kind == 1 { o += 1; continue }
                guard o + 2 <= oend else { return stopped(&r, .badTCPOption, o) }
                let len = Int(u8(p, o + 1))
                guard len >= 2, o + len <= oend else { return stopped(&r, .badTCPOption, o) }
                switch kind {
                case 2 where len == 4: r.tcpOptions.insert(.mss); r.tcpMSS = be16(p, o + 2)
                case 3 where len == 3: r.tcpOptions.insert(.windowScale); r.tcpWindowScale = u8(p, o + 2)
                case 4 where len == 2: r.tcpOptions.insert(.sackPermitted)
                case 5: r.tcpOptions.insert(.sack)
                case 8 where len == 10: r.tcpOptions.insert(.timestamps)
                default: r.tcpOptions.insert(.other)
                }
                o += len
            }
            if verify { r.l4ChecksumValid = valid(avail, pseudo) }
            r.payloadOffset = off + hl
            r.payloadLength = avail - hl
        case 1, 58:
            guard avail >= 4 else { return stopped(&r, .truncatedICMP, off) }
            guard b.has(off + 4) else { return stopped(&r, .headersPastFirstBuffer, off) }
            r.layers.insert(proto == 1 ? .icmpv4 : .icmpv6)
            r.icmpType = u8(p, off)
            r.icmpCode = u8(p, off + 1)
            if verify {
                let initial: UInt64 = proto == 58 ? pseudo : 0
                r.l4ChecksumValid = valid(avail, initial)
            }
            r.payloadOffset = off + 4
            r.payloadLength = avail - 4
        case 47:
            guard avail >= 4 else { return stopped(&r, .truncatedGRE, off) }
            guard b.has(off + 4) else { return stopped(&r, .headersPastFirstBuffer, off) }
            r.layers.insert(.gre)
            r.greProtocol = be16(p, off + 2)
            r.payloadOffset = off + 4
            r.payloadLength = avail - 4
        default:
            break
        }
        return r
    }
}
