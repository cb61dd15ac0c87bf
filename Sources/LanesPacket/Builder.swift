/// An IPv4 or IPv6 address.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(IPv4Address)
    case v6(IPv6Address)

    public init?(_ text: some StringProtocol) {
        if let a = IPv4Address(text) { self = .v4(a) } else if let a = IPv6Address(text) { self = .v6(a) } else { return nil }
    }
    public var description: String {
        switch self { case .v4(let a): a.description; case .v6(let a): a.description }
    }
    public var isV6: Bool { if case .v6 = self { return true } else { return false } }
}

/// What to build: one UDP or TCP packet over IPv4 or IPv6 in an Ethernet frame.
public struct FrameSpec: Sendable {
    public var dstMAC: MACAddress
    public var srcMAC: MACAddress
    public var vlan: UInt16? = nil
    public var src: IPAddress
    public var dst: IPAddress
    /// 17 UDP or 6 TCP.
    public var transport: UInt8 = 17
    public var srcPort: UInt16
    public var dstPort: UInt16
    public var ttl: UInt8 = 64
    public var tcpFlags: UInt8 = 0x10 // ACK
    /// Frame length in bytes, Ethernet header to the end of the payload (no FCS).
    public var frameLength: Int

    public init(dstMAC: MACAddress, srcMAC: MACAddress, src: IPAddress, dst: IPAddress, transport: UInt8 = 17,
                srcPort: UInt16, dstPort: UInt16, frameLength: Int) {
        self.dstMAC = dstMAC; self.srcMAC = srcMAC; self.src = src; self.dst = dst; self.transport = transport
        self.srcPort = srcPort; self.dstPort = dstPort; self.frameLength = frameLength
    }

    /// The smallest frame this spec can make.
    public var headerLength: Int {
        14 + (vlan == nil ? 0 : 4) + (src.isV6 ? 40 : 20) + (transport == 6 ? 20 : 8)
    }
}

public enum FrameBuilder {
    /// Writes the frame into `p` (at least `spec.frameLength` bytes) with correct
    /// lengths and checksums; the payload is filled with `fill`. Returns the
    /// offset of the transport header, or nil when the length is impossible.
    @discardableResult
    public static func build(_ spec: FrameSpec, into p: UnsafeMutableRawPointer, fill: UInt8 = 0) -> Int? {
        let n = spec.frameLength
        guard n >= spec.headerLength, n <= 65535 + 14, spec.src.isV6 == spec.dst.isV6 else { return nil }
        spec.dstMAC.write(to: p)
        spec.srcMAC.write(to: p + 6)
        var off = 12
        if let vlan = spec.vlan {
            p.storeBytes(of: UInt16(0x8100).bigEndian, toByteOffset: off, as: UInt16.self)
            p.storeBytes(of: (vlan & 0x0fff).bigEndian, toByteOffset: off + 2, as: UInt16.self)
            off += 4
        }
        let l3 = off + 2
        let l4: Int
        let l4Length: Int
        switch (spec.src, spec.dst) {
        case (.v4(let s), .v4(let d)):
            p.storeBytes(of: UInt16(0x0800).bigEndian, toByteOffset: off, as: UInt16.self)
            l4 = l3 + 20
            l4Length = n - l4
            let ip = p + l3
            ip.storeBytes(of: UInt8(0x45), as: UInt8.self)
            ip.storeBytes(of: UInt8(0), toByteOffset: 1, as: UInt8.self)
            ip.storeBytes(of: UInt16(n - l3).bigEndian, toByteOffset: 2, as: UInt16.self)
            ip.storeBytes(of: UInt32(0).bigEndian, toByteOffset: 4, as: UInt32.self) // id 0, DF clear, offset 0
            ip.storeBytes(of: spec.ttl, toByteOffset: 8, as: UInt8.self)
            ip.storeBytes(of: spec.transport, toByteOffset: 9, as: UInt8.self)
            ip.storeBytes(of: UInt16(0), toByteOffset: 10, as: UInt16.self)
            ip.storeBytes(of: s.value.bigEndian, toByteOffset: 12, as: UInt32.self)
            ip.storeBytes(of: d.value.bigEndian, toByteOffset: 16, as: UInt32.self)
            ip.storeBytes(of: Checksum.finish(Checksum.sum(ip, count: 20)).bigEndian, toByteOffset: 10, as: UInt16.self)
        case (.v6(let s), .v6(let d)):
            p.storeBytes(of: UInt16(0x86dd).bigEndian, toByteOffset: off, as: UInt16.self)
            l4 = l3 + 40
            l4Length = n - l4
            let ip = p + l3
            ip.storeBytes(of: UInt32(0x6000_0000).bigEndian, as: UInt32.self)
            ip.storeBytes(of: UInt16(l4Length).bigEndian, toByteOffset: 4, as: UInt16.self)
            ip.storeBytes(of: spec.transport, toByteOffset: 6, as: UInt8.self)
            ip.storeBytes(of: spec.ttl, toByteOffset: 7, as: UInt8.self)
            s.write(to: ip + 8)
            d.write(to: ip + 24)
        default:
            return nil
        }
        let t = p + l4
        t.storeBytes(of: spec.srcPort.bigEndian, as: UInt16.self)
        t.storeBytes(of: spec.dstPort.bigEndian, toByteOffset: 2, as: UInt16.self)
        let hdr: Int
        if spec.transport == 6 {
            t.storeBytes(of: UInt32(1).bigEndian, toByteOffset: 4, as: UInt32.self) // seq
            t.storeBytes(of: UInt32(0).bigEndian, toByteOffset: 8, as: UInt32.self) // ack
            t.storeBytes(of: UInt8(5 << 4), toByteOffset: 12, as: UInt8.self)
            t.storeBytes(of: spec.tcpFlags, toByteOffset: 13, as: UInt8.self)
            t.storeBytes(of: UInt16(65535).bigEndian, toByteOffset: 14, as: UInt16.self)
            t.storeBytes(of: UInt32(0), toByteOffset: 16, as: UInt32.self) // checksum, urgent
            hdr = 20
        } else {
            t.storeBytes(of: UInt16(l4Length).bigEndian, toByteOffset: 4, as: UInt16.self)
            t.storeBytes(of: UInt16(0), toByteOffset: 6, as: UInt16.self)
            hdr = 8
        }
        if l4Length > hdr { (t + hdr).initializeMemory(as: UInt8.self, repeating: fill, count: l4Length - hdr) }
        writeTransportChecksum(p, l3: l3, l4: l4, length: l4Length, transport: spec.transport, isV6: spec.src.isV6)
        return l4
    }

    /// Computes the UDP/TCP checksum in full (pseudo-header included).
    public static func writeTransportChecksum(_ p: UnsafeMutableRawPointer, l3: Int, l4: Int, length: Int, transport: UInt8, isV6: Bool) {
        let field = l4 + (transport == 6 ? 16 : 6)
        p.storeBytes(of: UInt16(0), toByteOffset: field, as: UInt16.self)
        let pseudo: UInt64
        if isV6 {
            pseudo = Checksum.pseudoIPv6(p + l3, proto: transport, length: length)
        } else {
            let s = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: l3 + 12, as: UInt32.self))
            let d = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: l3 + 16, as: UInt32.self))
            pseudo = Checksum.pseudoIPv4(src: s, dst: d, proto: transport, length: length)
        }
        var ck = Checksum.finish(Checksum.sum(p + l4, count: length, initial: pseudo))
        if ck == 0 && transport == 17 { ck = 0xffff } // RFC 768: 0 means "no checksum"
        p.storeBytes(of: ck.bigEndian, toByteOffset: field, as: UInt16.self)
    }
}

/// In-place edits on a parsed packet, with incremental checksum updates (RFC 1624).
public enum PacketEdit {
    @inline(__always) static func load16(_ p: UnsafeMutableRawPointer, _ o: Int) -> UInt16 { UInt16(bigEndian: p.loadUnaligned(fromByteOffset: o, as: UInt16.self)) }
    @inline(__always) static func store16(_ p: UnsafeMutableRawPointer, _ o: Int, _ v: UInt16) { p.storeBytes(of: v.bigEndian, toByteOffset: o, as: UInt16.self) }

    /// Offset of the transport checksum field, or nil when there is none to keep.
    static func l4ChecksumOffset(_ r: ParsedPacket) -> Int? {
        if r.layers.contains(.udp) { return r.l4Offset + 6 }
        if r.layers.contains(.tcp) { return r.l4Offset + 16 }
        return nil
    }

    /// Decrements the IPv4 TTL (updating the header checksum) or the IPv6 hop
    /// limit. Returns false, changing nothing, when it is already 0 or 1.
    @inlinable
    public static func decrementTTL(_ p: UnsafeMutableRawPointer, _ r: ParsedPacket) -> Bool {
        guard r.ttl > 1 else { return false }
        if r.layers.contains(.ipv4) {
            let off = r.l3Offset + 8
            let old = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: off, as: UInt16.self))
            let new = old &- 0x0100
            p.storeBytes(of: new.bigEndian, toByteOffset: off, as: UInt16.self)
            let ck = UInt16(bigEndian: p.loadUnaligned(fromByteOffset: r.l3Offset + 10, as: UInt16.self))
            p.storeBytes(of: Checksum.update(ck, old: old, new: new).bigEndian, toByteOffset: r.l3Offset + 10, as: UInt16.self)
            return true
        }
        if r.layers.contains(.ipv6) {
            p.storeBytes(of: r.ttl - 1, toByteOffset: r.l3Offset + 7, as: UInt8.self)
            return true
        }
        return false
    }

    /// Rewrites the IPv4 source and/or destination, updating the IP header
    /// checksum and the UDP/TCP checksum (pseudo-header).
    public static func rewriteIPv4(_ p: UnsafeMutableRawPointer, _ r: inout ParsedPacket, src: UInt32? = nil, dst: UInt32? = nil) {
        guard r.layers.contains(.ipv4) else { return }
        for (offset, new) in [(12, src), (16, dst)] {
            guard let new else { continue }
            let o = r.l3Offset + offset
            let old = UInt32(bigEndian: p.loadUnaligned(fromByteOffset: o, as: UInt32.self))
            p.storeBytes(of: new.bigEndian, toByteOffset: o, as: UInt32.self)
            store16(p, r.l3Offset + 10, Checksum.update(load16(p, r.l3Offset + 10), old: old, new: new))
            if let c = l4ChecksumOffset(r), !(r.layers.contains(.udp) && load16(p, c) == 0) {
                var v = Checksum.update(load16(p, c), old: old, new: new)
                if v == 0 && r.layers.contains(.udp) { v = 0xffff }
                store16(p, c, v)
            }
            if offset == 12 { r.ipv4Src = new } else { r.ipv4Dst = new }
        }
    }

    /// Rewrites UDP/TCP ports, updating the transport checksum.
    public static func rewritePorts(_ p: UnsafeMutableRawPointer, _ r: inout ParsedPacket, src: UInt16? = nil, dst: UInt16? = nil) {
        guard let c = l4ChecksumOffset(r) else { return }
        for (offset, new) in [(0, src), (2, dst)] {
            guard let new else { continue }
            let o = r.l4Offset + offset
            let old = load16(p, o)
            store16(p, o, new)
            if !(r.layers.contains(.udp) && load16(p, c) == 0 && r.layers.contains(.ipv4)) {
                var v = Checksum.update(load16(p, c), old: old, new: new)
                if v == 0 && r.layers.contains(.udp) { v = 0xffff }
                store16(p, c, v)
            }
            if offset == 0 { r.srcPort = new } else { r.dstPort = new }
        }
    }
}
