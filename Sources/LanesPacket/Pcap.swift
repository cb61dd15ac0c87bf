/// Classic pcap and pcapng, read and written, Ethernet link type: the one reader
/// and writer of `lanes decode`, `lanes capture` and `lanes replay`.
public struct PcapRecord: Sendable, Equatable {
    public var timestampNanos: UInt64
    public var originalLength: Int
    public var data: [UInt8]
    public init(timestampNanos: UInt64, originalLength: Int? = nil, data: [UInt8]) {
        self.timestampNanos = timestampNanos
        self.originalLength = originalLength ?? data.count
        self.data = data
    }
}

public enum PcapError: Error, Equatable, CustomStringConvertible {
    case tooShort
    case badMagic(UInt32)
    case unsupportedLinkType(UInt32)
    case truncatedRecord(index: Int)
    case badBlock(offset: Int)

    public var description: String {
        switch self {
        case .tooShort: "not a pcap file: shorter than its header"
        case .badMagic(let m): "not a pcap or pcapng file (magic 0x\(String(m, radix: 16)))"
        case .unsupportedLinkType(let t): "link type \(t) is not Ethernet (1)"
        case .truncatedRecord(let i): "record \(i) runs past the end of the file"
        case .badBlock(let o): "bad pcapng block at byte \(o)"
        }
    }
}

/// The file formats Lanes writes.
public enum PcapFormat: Sendable, Equatable {
    /// Classic pcap, microsecond timestamps (magic a1b2c3d4).
    case pcapMicros
    /// Classic pcap, nanosecond timestamps (magic a1b23c4d).
    case pcapNanos
    /// pcapng: one section, one interface (nanosecond `if_tsresol`), enhanced
    /// packet blocks carrying the receive queue in `epb_queue` (option 6).
    case pcapng

    /// pcapng for a name ending in .pcapng, else nanosecond pcap.
    public static func forFileName(_ name: String) -> PcapFormat { name.hasSuffix(".pcapng") ? .pcapng : .pcapNanos }
}

public enum Pcap {
    /// Writes a whole file (classic microsecond pcap unless told), link type Ethernet.
    public static func write(_ records: [PcapRecord], snaplen: UInt32 = 65535, format: PcapFormat = .pcapMicros) -> [UInt8] {
        var out: [UInt8] = []
        appendHeader(format, snaplen: snaplen, to: &out)
        for r in records {
            r.data.withUnsafeBytes { appendRecord(format, timestampNanos: r.timestampNanos, originalLength: r.originalLength, data: $0, snaplen: snaplen, to: &out) }
        }
        return out
    }

    /// The file header: pcap's global header, or pcapng's section header and
    /// interface description blocks.
    public static func appendHeader(_ format: PcapFormat, snaplen: UInt32, to out: inout [UInt8]) {
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        switch format {
        case .pcapMicros, .pcapNanos:
            u32(format == .pcapNanos ? 0xa1b2_3c4d : 0xa1b2_c3d4); u16(2); u16(4); u32(0); u32(0); u32(snaplen); u32(1)
        case .pcapng:
            // Section header: type, length 28, byte-order magic, version 1.0, section length unknown (-1).
            u32(0x0a0d_0d0a); u32(28); u32(0x1a2b_3c4d); u16(1); u16(0); u32(0xffff_ffff); u32(0xffff_ffff); u32(28)
            // Interface description: Ethernet, snaplen, if_tsresol (9) = 9 (nanoseconds), end of options.
            u32(1); u32(32); u16(1); u16(0); u32(snaplen)
            u16(9); u16(1); out.append(contentsOf: [9, 0, 0, 0]); u32(0)
            u32(32)
        }
    }

    /// One record: at most `snaplen` bytes of `data`, the packet's original
    /// length, its time, and (pcapng) the queue it arrived on.
    @inlinable
    public static func appendRecord(_ format: PcapFormat, timestampNanos ts: UInt64, originalLength: Int, data: UnsafeRawBufferPointer,
                                    snaplen: UInt32, queue: UInt32? = nil, to out: inout [UInt8]) {
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) } }
        let incl = min(data.count, Int(snaplen))
        let orig = UInt32(max(originalLength, incl))
        switch format {
        case .pcapMicros, .pcapNanos:
            u32(UInt32(truncatingIfNeeded: ts / 1_000_000_000))
            u32(UInt32(format == .pcapNanos ? ts % 1_000_000_000 : ts % 1_000_000_000 / 1000))
            u32(UInt32(incl)); u32(orig)
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: data[0..<incl]))
        case .pcapng:
            let padded = (incl + 3) & ~3
            let options = queue == nil ? 0 : 12 // epb_queue (6, 4 bytes) and the end of options
            let length = UInt32(32 + padded + options)
            u32(6); u32(length); u32(0); u32(UInt32(truncatingIfNeeded: ts >> 32)); u32(UInt32(truncatingIfNeeded: ts))
            u32(UInt32(incl)); u32(orig)
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: data[0..<incl]))
            for _ in incl..<padded { out.append(0) }
            if let queue { u16(6); u16(4); u32(queue); u32(0) }
            u32(length)
        }
    }

    /// Reads classic pcap (either byte order, micro- or nanosecond) or pcapng;
    /// any damage throws.
    public static func read(_ bytes: [UInt8]) throws(PcapError) -> [PcapRecord] {
        let r = try readPrefix(bytes)
        if let cut = r.cut { throw cut }
        return r.records
    }

    /// The records before the first damaged one, and the damage (nil: none). A
    /// capture cut mid-record (a full disk, a killed tcpdump) still gives what
    /// came before it, as tcpdump reads it. A bad file header throws.
    public static func readPrefix(_ bytes: [UInt8]) throws(PcapError) -> (records: [PcapRecord], cut: PcapError?) {
        guard bytes.count >= 4 else { throw .tooShort }
        let magicLE = le32(bytes, 0)
        if magicLE == 0x0a0d_0d0a { return try readPcapNG(bytes) }
        guard bytes.count >= 24 else { throw .tooShort }
        let swapped: Bool, nanos: Bool
        switch magicLE {
        case 0xa1b2_c3d4: swapped = false; nanos = false
        case 0xa1b2_3c4d: swapped = false; nanos = true
        case 0xd4c3_b2a1: swapped = true; nanos = false
        case 0x4d3c_b2a1: swapped = true; nanos = true
        default: throw .badMagic(magicLE)
        }
        func u32(_ o: Int) -> UInt32 { swapped ? le32(bytes, o).byteSwapped : le32(bytes, o) }
        let link = u32(20) & 0x0fff_ffff
        guard link == 1 else { throw .unsupportedLinkType(link) }
        var out: [PcapRecord] = []
        var o = 24
        while o < bytes.count {
            guard o + 16 <= bytes.count else { return (out, .truncatedRecord(index: out.count)) }
            let sec = UInt64(u32(o)), frac = UInt64(u32(o + 4))
            let incl = Int(u32(o + 8)), orig = Int(u32(o + 12))
            guard incl <= bytes.count - o - 16 else { return (out, .truncatedRecord(index: out.count)) }
            out.append(PcapRecord(timestampNanos: sec * 1_000_000_000 + (nanos ? frac : frac * 1000),
                                  originalLength: orig, data: Array(bytes[(o + 16)..<(o + 16 + incl)])))
            o += 16 + incl
        }
        return (out, nil)
    }

    static func le32(_ b: [UInt8], _ o: Int) -> UInt32 {
        UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
    }

    /// pcapng: section header, interface description, enhanced and simple packet blocks.
    static func readPcapNG(_ bytes: [UInt8]) throws(PcapError) -> (records: [PcapRecord], cut: PcapError?) {
        var out: [PcapRecord] = []
        var o = 0
        var swapped = false
        var tsResolution: [UInt64] = [] // nanoseconds per tick, per interface
        var linkTypes: [UInt32] = []
        func u32(_ at: Int) -> UInt32 { swapped ? le32(bytes, at).byteSwapped : le32(bytes, at) }
        func u16(_ at: Int) -> UInt16 {
            let v = UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8
            return swapped ? v.byteSwapped : v
        }
        // Damage in the first block (the section header) is a bad file; later, a cut.
        func cut(_ e: PcapError) throws(PcapError) -> (records: [PcapRecord], cut: PcapError?) {
            if o == 0 { throw e }
            return (out, e)
        }
        while o + 12 <= bytes.count {
            let type = le32(bytes, o)
            if type == 0x0a0d_0d0a {
                let bom = le32(bytes, o + 8)
                if bom == 0x1a2b_3c4d { swapped = false } else if bom == 0x4d3c_2b1a { swapped = true } else { return try cut(.badBlock(offset: o)) }
                tsResolution = []; linkTypes = []
            }
            let t = u32(o)
            let len = Int(u32(o + 4))
            guard len >= 12, len % 4 == 0, len <= bytes.count - o else { return try cut(.badBlock(offset: o)) }
            switch t {
            case 1: // interface description
                guard len >= 20 else { return try cut(.badBlock(offset: o)) }
                linkTypes.append(UInt32(u16(o + 8)))
                var res: UInt64 = 1000 // default: microseconds
                var p = o + 16
                while p + 4 <= o + len - 4 {
                    let code = u16(p), olen = Int(u16(p + 2))
                    if code == 0 { break }
                    if code == 9 && olen >= 1 && p + 4 < bytes.count {
                        let v = bytes[p + 4]
                        if v & 0x80 == 0 {
                            var x: UInt64 = 1_000_000_000
                            for _ in 0..<Int(v) { x /= 10 }
                            res = max(x, 1)
                        }
                    }
                    p += 4 + (olen + 3) & ~3
                }
                tsResolution.append(res)
            case 6: // enhanced packet
                guard len >= 32 else { return try cut(.badBlock(offset: o)) }
                let iface = Int(u32(o + 8))
                guard iface < linkTypes.count else { return try cut(.badBlock(offset: o)) }
                guard linkTypes[iface] == 1 else { return try cut(.unsupportedLinkType(linkTypes[iface])) }
                let ts = UInt64(u32(o + 12)) << 32 | UInt64(u32(o + 16))
                let cap = Int(u32(o + 20)), orig = Int(u32(o + 24))
                guard cap <= len - 32 else { return try cut(.badBlock(offset: o)) }
                out.append(PcapRecord(timestampNanos: ts &* tsResolution[iface], originalLength: orig,
                                      data: Array(bytes[(o + 28)..<(o + 28 + cap)])))
            case 3: // simple packet
                guard len >= 16, !linkTypes.isEmpty else { return try cut(.badBlock(offset: o)) }
                let orig = Int(u32(o + 8))
                let cap = min(orig, len - 16)
                out.append(PcapRecord(timestampNanos: 0, originalLength: orig, data: Array(bytes[(o + 12)..<(o + 12 + cap)])))
            default: break
            }
            o += len
        }
        guard o == bytes.count else { return try cut(.badBlock(offset: o)) }
        return (out, nil)
    }
}
