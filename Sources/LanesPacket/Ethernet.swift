/// In-place edits on Ethernet frames, over raw frame memory (no copy).
public enum EthernetEdit {
    /// Swaps destination and source MAC addresses (12 bytes at the frame start).
    /// The caller guarantees at least 12 bytes.
    @inlinable @inline(__always)
    public static func swapAddresses(_ frame: UnsafeMutableRawPointer) {
        let d0 = frame.loadUnaligned(as: UInt32.self)
        let d1 = frame.loadUnaligned(fromByteOffset: 4, as: UInt16.self)
        let s0 = frame.loadUnaligned(fromByteOffset: 6, as: UInt16.self)
        let s1 = frame.loadUnaligned(fromByteOffset: 8, as: UInt32.self)
        frame.storeBytes(of: s0, toByteOffset: 0, as: UInt16.self)
        frame.storeBytes(of: s1, toByteOffset: 2, as: UInt32.self)
        frame.storeBytes(of: d0, toByteOffset: 6, as: UInt32.self)
        frame.storeBytes(of: d1, toByteOffset: 10, as: UInt16.self)
    }
}
