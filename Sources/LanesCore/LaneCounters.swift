/// The counters of one lane, by index into its padded stats block. Written by
/// the lane alone (relaxed stores, once per burst), read by the monitor.
public enum LaneCounter: Int, CaseIterable, Sendable {
    case rxPackets, rxBytes, txPackets, txBytes
    /// The app chose to drop (e.g. `lanes drop`).
    case dropApp
    /// The TX ring had no room.
    case dropTxRingFull
    /// No free frame for the generator or the fill ring.
    case dropNoFrame
    /// Forwarding drop causes.
    case dropTTL, dropNoRoute, dropBadChecksum, dropNonIP, dropMalformed
    /// A full software ring between lanes (pipeline mode).
    case dropRingFull
    case txKicks, rxWakeups, idlePolls, bursts
    /// Gauges: free frames and fill-ring frames at the last publish.
    case freeFrames, fillFrames
    /// 1 once a generator lane has sent all it was asked to and drained TX.
    case finished
    /// The errno that stopped a live-frames generator lane (0: none).
    case lastError
    /// CLOCK_MONOTONIC nanoseconds of a generator lane's first and latest send (0:
    /// none yet). Rates are computed over this span, not over start-up and drain.
    case firstTxNanos, lastTxNanos
    /// A seqlock over the lane's turn: odd while a turn moves frames between the
    /// free list and the rings, even between turns (the monitor's frame count).
    case turn
    /// `lanes capture`: a packet with no free capture slot (the writer fell
    /// behind): dropped from the capture, never waited for.
    case dropCapture
    /// Multi-buffer: a packet with more buffers than the kernel takes in one TX
    /// packet (copy mode: net.core.max_skb_frags + 1), or than a burst holds.
    case dropTooManyFrags
    /// Multi-buffer: a packet with an invalid buffer (zero length, or past its
    /// frame or the UMEM): dropped whole, its good frames recycled, the lane goes on.
    case dropInvalidDesc

    public var name: String {
        switch self {
        case .rxPackets: "rx_packets"
        case .rxBytes: "rx_bytes"
        case .txPackets: "tx_packets"
        case .txBytes: "tx_bytes"
        case .dropApp: "drop_app"
        case .dropTxRingFull: "drop_tx_ring_full"
        case .dropNoFrame: "drop_no_frame"
        case .dropTTL: "drop_ttl"
        case .dropNoRoute: "drop_no_route"
        case .dropBadChecksum: "drop_bad_checksum"
        case .dropNonIP: "drop_non_ip"
        case .dropMalformed: "drop_malformed"
        case .dropRingFull: "drop_ring_full"
        case .txKicks: "tx_kicks"
        case .rxWakeups: "rx_wakeups"
        case .idlePolls: "idle_polls"
        case .bursts: "bursts"
        case .freeFrames: "free_frames"
        case .fillFrames: "fill_frames"
        case .finished: "finished"
        case .lastError: "last_error"
        case .firstTxNanos: "first_tx_ns"
        case .lastTxNanos: "last_tx_ns"
        case .turn: "turn"
        case .dropCapture: "drop_capture"
        case .dropTooManyFrags: "drop_too_many_frags"
        case .dropInvalidDesc: "drop_invalid_desc"
        }
    }

    public var isDrop: Bool { name.hasPrefix("drop_") }
    /// Slots per lane: 32 counters of 8 bytes, four 64-byte cache lines.
    public static let slots = 32
}

/// A monitor's copy of one lane's counters.
public struct LaneSnapshot: Sendable, Equatable {
    public var values: [UInt64]
    public init(values: [UInt64] = Array(repeating: 0, count: LaneCounter.slots)) { self.values = values }
    public subscript(_ c: LaneCounter) -> UInt64 { values[c.rawValue] }
    public var drops: UInt64 { LaneCounter.allCases.filter(\.isDrop).reduce(0) { $0 + values[$1.rawValue] } }
}
