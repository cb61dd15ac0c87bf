/// The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
public enum Checksum {
    /// Ones' complement sum of `count` bytes at `p` (big-endian 16-bit words), not folded.
    @inlinable
    public static func sum(_ p: UnsafeRawPointer, count: Int, initial: UInt64 = 0) -> UInt64 {
        var acc = initial
        var i = 0
        while i + 8 <= count {
            let w = UInt64(bigEndian: p.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            acc &+= w >> 32
            acc &+= w & 0xffff_ffff
            i += 8
        }
        while i + 2 <= count {
            acc &+= UInt64(UInt16(bigEndian: p.loadUnaligned(fromByteOffset: i, as: UInt16.self)))
            i += 2
        }
        if i < count { acc &+= UInt64(p.load(fromByteOffset: i, as: UInt8.self)) << 8 }
        return acc
    }

    /// Ones' complement sum of bytes `from ..< from + count` of a packet laid out
    /// over `buffers` in order (AF_XDP multi-buffer), not folded. A buffer that
    /// starts at an odd offset into the range pairs its bytes the other way: its
    /// folded sum is byte-swapped (RFC 1071's byte-order independence).
    public static func sum(buffers: [UnsafeRawBufferPointer], from: Int, count: Int, initial: UInt64 = 0) -> UInt64 {
        var acc = initial
        var at = 0 // the packet offset of the buffer's first byte
        let end = from + count
        for b in buffers {
            let lo = max(from, at), hi = min(end, at + b.count)
            if lo < hi, let base = b.baseAddress {
                let s = fold(sum(base + (lo - at), count: hi - lo))
                acc &+= UInt64((lo - from) & 1 == 0 ? s : s.byteSwapped)
            }
            at += b.count
            if at >= end { break }
        }
        return acc
    }

    /// Folds a sum to 16 bits (not complemented).
    @inlinable
    public static func fold(_ s: UInt64) -> UInt16 {
        var x = s
        while x >> 16 != 0 { x = (x & 0xffff) &+ (x >> 16) }
        return UInt16(x)
    }

    /// The checksum field value: complement of the folded sum.
    @inlinable
    public static func finish(_ s: UInt64) -> UInt16 { ~fold(s) }

    /// RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), for one 16-bit field changing from m to m'.
    @inlinable @inline(__always)
    public static func update(_ checksum: UInt16, old: UInt16, new: UInt16) -> UInt16 {
        var s = UInt32(~checksum) &+ UInt32(~old) &+ UInt32(new)
        s = (s & 0xffff) &+ (s >> 16)
        s = (s & 0xffff) &+ (s >> 16)
        return ~UInt16(s)
    }

    /// The IPv4 header checksum after the TTL drops by one, exactly as the
    /// kernel's ip_decrease_ttl computes it (so a forwarded packet's checksum
    /// is bit-for-bit the kernel router's, 0x0000 rather than 0xffff included).
    @inlinable @inline(__always)
    public static func afterTTLDecrement(_ checksum: UInt16) -> UInt16 {
        let c = UInt32(checksum) &+ 0x0100
        return UInt16(truncatingIfNeeded: c &+ (c >= 0xffff ? 1 : 0))
    }

    /// RFC 1624 for a 32-bit field (an IPv4 address): two 16-bit updates.
    @inlinable @inline(__always)
    public static func update(_ checksum: UInt16, old: UInt32, new: UInt32) -> UInt16 {
        let c = update(checksum, old: UInt16(old >> 16), new: UInt16(new >> 16))
        return update(c, old: UInt16(old & 0xffff), new: UInt16(new & 0xffff))
    }

    /// Pseudo-header sum for IPv4 (RFC 768/793).
    @inlinable
    public static func pseudoIPv4(src: UInt32, dst: UInt32, proto: UInt8, length: Int) -> UInt64 {
        UInt64(src >> 16) + UInt64(src & 0xffff) + UInt64(dst >> 16) + UInt64(dst & 0xffff) + UInt64(proto) + UInt64(length)
    }

    /// Pseudo-header sum for IPv6 (RFC 8200 section 8.1), addresses read from the packet.
    @inlinable
    public static func pseudoIPv6(_ ip6: UnsafeRawPointer, proto: UInt8, length: Int) -> UInt64 {
        sum(ip6 + 8, count: 32) &+ UInt64(proto) &+ UInt64(length)
    }
}
