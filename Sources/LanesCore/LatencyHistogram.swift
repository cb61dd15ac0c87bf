import Synchronization

/// A log-linear (HDR-style) histogram of nanosecond values in memory allocated
/// once: exact below 64 ns, then 32 sub-buckets per power of two (about 3%
/// precision) up to 2^40 ns. Recording never allocates; one writer. It is a
/// handle: copies share the buckets (not the summary fields), which are freed
/// with the last copy (the metrics server's copies keep them alive).
/// Sendable unchecked: a copy sent to another thread shares only the buckets,
/// atomics with one writer (relaxed); the summary fields are the copy's own.
public struct LatencyHistogram: @unchecked Sendable {
    public static let bucketCount = 64 + 35 * 32
    /// The buckets' owner.
    final class Buckets: @unchecked Sendable {
        let pointer: UnsafeMutablePointer<Atomic<UInt64>>
        init() {
            pointer = .allocate(capacity: LatencyHistogram.bucketCount)
            for i in 0..<LatencyHistogram.bucketCount { (pointer + i).initialize(to: Atomic(0)) }
        }
        deinit { pointer.deinitialize(count: LatencyHistogram.bucketCount); pointer.deallocate() }
    }
    let owner = Buckets()
    /// Written by the one recording lane with relaxed stores, read by the metrics
    /// thread with relaxed loads (`bucket(_:)`): a count, ordered by nothing else.
    @usableFromInline let buckets: UnsafeMutablePointer<Atomic<UInt64>>
    public private(set) var count: UInt64 = 0
    public private(set) var min: UInt64 = .max
    public private(set) var max: UInt64 = 0
    public private(set) var sum: Double = 0

    public init() { buckets = owner.pointer }

    /// Bucket `i`'s count now (any thread).
    @inlinable @inline(__always)
    public func bucket(_ i: Int) -> UInt64 { buckets[i].load(ordering: .relaxed) }

    /// One writer: a relaxed load and store, no read-modify-write.
    @inlinable @inline(__always)
    func bump(_ i: Int, by n: UInt64 = 1) { buckets[i].store(buckets[i].load(ordering: .relaxed) &+ n, ordering: .relaxed) }

    @inlinable @inline(__always)
    public static func index(_ v: UInt64) -> Int {
        if v < 64 { return Int(v) }
        let e = 63 - v.leadingZeroBitCount // >= 6
        let sub = Int((v >> UInt64(e - 5)) & 31)
        return Swift.min(64 + (e - 6) * 32 + sub, bucketCount - 1)
    }

    /// The smallest value that maps to bucket `i`.
    public static func lowerBound(_ i: Int) -> UInt64 {
        if i < 64 { return UInt64(i) }
        let e = (i - 64) / 32 + 6, sub = UInt64((i - 64) % 32)
        return (32 + sub) << UInt64(e - 5)
    }

    @inline(__always)
    public mutating func record(_ v: UInt64) {
        bump(LatencyHistogram.index(v))
        count &+= 1
        if v < min { min = v }
        if v > max { max = v }
        sum += Double(v)
    }

    public mutating func add(_ other: LatencyHistogram) {
        for i in 0..<LatencyHistogram.bucketCount { bump(i, by: other.bucket(i)) }
        count &+= other.count
        min = Swift.min(min, other.min)
        max = Swift.max(max, other.max)
        sum += other.sum
    }

    /// Adds counts kept elsewhere in this histogram's layout (the XDP receiver's buckets).
    public mutating func add(buckets other: [UInt64], count: UInt64, min: UInt64, max: UInt64, sum: Double) {
        for i in 0..<Swift.min(other.count, LatencyHistogram.bucketCount) { bump(i, by: other[i]) }
        guard count > 0 else { return }
        self.count &+= count
        self.min = Swift.min(self.min, min)
        self.max = Swift.max(self.max, max)
        self.sum += sum
    }

    /// The value at quantile q (0...1): the bucket's lower bound, clamped to [min, max].
    public func percentile(_ q: Double) -> UInt64 {
        guard count > 0 else { return 0 }
        if q >= 1 { return max }
        let rank = Swift.max(1, UInt64((q * Double(count)).rounded(.up)))
        var seen: UInt64 = 0
        for i in 0..<LatencyHistogram.bucketCount {
            seen &+= bucket(i)
            if seen >= rank { return Swift.min(Swift.max(LatencyHistogram.lowerBound(i), min), max) }
        }
        return max
    }
}
