/// Paces a sender at a fixed rate: how many frames may go now, from the time and
/// the count sent so far. Frame k is due at start + k x ns-per-packet, so the mean
/// rate is exact over any span. Behind schedule (the sending thread lost its core
/// for a while), the debt is paid at twice the rate, in bursts of at most `max`,
/// rather than at once: a line-rate burst of the whole debt is what a device's
/// receive ring (veth's holds 256 frames) would take as loss that the device did
/// not cause.
public struct Pacer: Sendable {
    /// Nanoseconds between frames; 0: unpaced (every call gets `max`).
    public let nsPerPacket: Double
    var startNs: UInt64 = 0
    /// While behind: the earliest next burst.
    var catchUpAt: UInt64 = 0

    public init(pps: Double?) { nsPerPacket = pps.map { 1e9 / $0 } ?? 0 }

    /// More than this many frames owed is "behind": twice the burst.
    @inline(__always)
    static func behind(_ owed: UInt64, max: UInt64) -> Bool { owed > 2 * max }

    /// Frames that may go now, at most `max`; 0 before the next is due, and between
    /// the bursts of a catch-up. The first call starts the clock.
    @inline(__always)
    public mutating func allowance(max: UInt64, sent: UInt64, now: UInt64) -> UInt64 {
        guard nsPerPacket > 0 else { return max }
        if startNs == 0 { startNs = now }
        guard now >= startNs else { return 0 }
        let due = UInt64(Double(now &- startNs) / nsPerPacket) &+ 1
        guard due > sent else { return 0 }
        let n = Swift.min(max, due - sent)
        if Pacer.behind(due - sent, max: max) {
            if now < catchUpAt { return 0 }
            catchUpAt = now &+ UInt64(Double(n) * nsPerPacket / 2)
        }
        return n
    }

    /// When `want` more frames will be due after `sent` (or the next catch-up burst may go).
    public func wakeNs(sent: UInt64, want: UInt64) -> UInt64 {
        Swift.max(catchUpAt, startNs &+ UInt64(Double(sent &+ want &- 1) * nsPerPacket))
    }

    /// Back to the start: the next call starts the clock again.
    public mutating func reset() { startNs = 0; catchUpAt = 0 }
}
