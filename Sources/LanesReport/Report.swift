import Foundation
import LanesCore
import LanesXDP

/// Why a run ended (the reports' `exit_reason`).
public enum ExitReason: String, Sendable, Codable, CustomStringConvertible {
    case duration
    case sigint = "SIGINT"
    case sigterm = "SIGTERM"
    /// The terminal or SSH session the run was started from went away.
    case sighup = "SIGHUP"
    case interfaceLost = "interface lost"
    case countReached = "count reached"
    /// A lane stopped on an error it reported (live-frames transmit).
    case error
    /// The device changed under the run (`DeviceWatch`): the report says how.
    case fault

    public var description: String { rawValue }
}

/// The one end-of-run report: what every command that runs (drop, fwd on either
/// path and the pipeline, gen on either transmit path and its receivers, sink and
/// the kernel sink, capture, replay) prints as its last `--json` line, and what
/// the lab (`scale`, `rfc2544`) decodes. Written with snake_case keys
/// (`Report.encoder`), read back with `Report.decoder`; a section a run has no
/// part of is nil and absent from the JSON, so each command prints the keys it
/// always printed. Interval lines are `IntervalLine`.
public struct Report: Codable, Sendable {
    // MARK: Every run
    public var interface: String
    public var durationS: Double
    public var exitReason: ExitReason
    /// The device fault that ended the run (`DeviceWatch`), in words.
    public var fault: String?
    /// Times a port's link went down (the lanes wait; counting resumes).
    public var linkDownEvents: Int?
    /// CPU seconds the process used (all threads, user + system), at the report.
    public var cpuS: Double?
    /// Every lane's frames in exactly one place at the end (FrameLedger).
    public var framesBalanced: Bool?
    /// ENA's allowance counters' rises over the run (absent off ena).
    public var ec2Shaping: EC2Shaping?

    // MARK: The lanes' set-up (drop, fwd, capture, replay, gen over AF_XDP)
    public var bindMode: String?
    public var xdpMode: String?
    public var filter: String?
    public var umemPlacement: String?
    public var framesPerLane: Int?
    public var frameSize: Int?
    public var umemBytesPerLane: Int?
    public var processRssBytes: Int?
    public var processBeyondUmemBytes: Int?
    /// Sockets bound with XDP_USE_SG (packets across frames).
    public var multiBuffer: Bool?
    /// "xsk": the lanes; "xdp": forwarded in the XDP program (`fwd --path xdp`).
    public var path: String?
    /// `--path xdp`: the rise of the egress ports' tx_dropped over the run.
    public var egressTxDropped: UInt64?

    // MARK: Totals and lanes
    public var rxPackets: UInt64?
    public var txPackets: UInt64?
    public var rxBytes: UInt64?
    public var txBytes: UInt64?
    public var rxPps: Double?
    public var txPps: Double?
    /// The lanes' drops by cause, summed (names as the counters: drop_app, ...).
    public var drops: [String: UInt64]?
    public var xsk: XSKStatistics?
    public var xdp: XDPQueueCounters?
    /// One per lane (per socket for the kernel sink); each command fills its fields.
    public var lanes: [Lane]?

    // MARK: fwd --impair
    public var impairDropped: UInt64?
    public var impairSwapped: UInt64?

    // MARK: gen
    /// "xsk" or "xdp", and why it was chosen ("" receiving only).
    public var txPath: String?
    public var txPathReason: String?
    /// Receiving: "xsk" (AF_XDP lanes) or "xdp" (counted in XDP).
    public var rxPath: String?
    public var flows: Int?
    public var sizes: [Int]?
    /// Seconds from the first frame sent to the last (absent: under two sends
    /// apart); gen's and replay's rates are over this span.
    public var sendingS: Double?
    public var txBps: Double?
    public var requestedPps: Double?
    public var requestedBps: Double?
    public var dropTxRingFull: UInt64?
    /// The kernel's XDP_STATISTICS rx_dropped over the generator's sockets.
    public var kernelRxDropped: UInt64?

    // MARK: Streams (gen's signed receivers)
    public var lost: Int64?
    public var reordered: UInt64?
    public var duplicates: UInt64?
    public var latency: Latency?
    public var streams: [Stream]?
    /// Stream ids counted per stream (every id below this), the streams expected
    /// (absent: receive only without --flows), signed packets of ids past the
    /// tracked ones (in rx_packets, in no stream), seen streams past the expected
    /// ones, and expected streams of which nothing arrived.
    public var trackedStreams: Int?
    public var expectedStreams: Int?
    public var untracked: UInt64?
    public var unexpectedStreams: Int?
    public var missingStreams: [Int]?

    // MARK: Sinks (sink in XDP: `queues`; sink --kernel: `lanes` are its sockets)
    public var packets: UInt64?
    public var bytes: UInt64?
    public var pps: Double?
    public var queues: [Lane]?
    public var udpRcvbufErrors: UInt64?
    public var udpInErrors: UInt64?

    // MARK: capture
    public var file: String?
    public var format: String?
    public var captured: UInt64?
    public var captureDropped: UInt64?
    /// Records written out of time order (held up past the merge window).
    public var lateRecords: UInt64?
    public var bytesWritten: UInt64?

    // MARK: replay
    public var packetsInFile: Int?
    public var skipped: [String: Int]?
    public var timing: String?
    public var sentPackets: UInt64?
    public var sentBytes: UInt64?
    public var bps: Double?
    /// Original timing: the file's own span divided by the speed, per pass.
    public var fileSpanS: Double?

    public init(interface: String, durationS: Double, exitReason: ExitReason) {
        self.interface = interface
        self.durationS = durationS
        self.exitReason = exitReason
    }

    /// One lane, queue or socket.
    public struct Lane: Codable, Sendable, Equatable {
        public var queue: Int?
        public var core: Int?
        /// The kernel sink's socket index.
        public var socket: Int?
        /// "IN->OUT" for two-port forwarding.
        public var direction: String?
        public var rxPackets: UInt64?
        public var txPackets: UInt64?
        public var rxBytes: UInt64?
        public var txBytes: UInt64?
        public var drops: [String: UInt64]?
        public var txKicks: UInt64?
        public var idlePolls: UInt64?
        public var xsk: XSKStatistics?
        public var xdp: XDPQueueCounters?
        public var frames: FrameLedger?
        /// gen: the streams the lane sends, and signed packets it received.
        public var streams: Int?
        public var rxSigned: UInt64?
        /// capture.
        public var captured: UInt64?
        public var captureDropped: UInt64?
        /// replay and the XDP sink.
        public var packets: UInt64?
        public var bytes: UInt64?
        public init(queue: Int? = nil, core: Int? = nil) { self.queue = queue; self.core = core }
    }

    /// One stream as a signed receiver saw it. `queue`: where its packets arrived
    /// (absent: none did); `unexpected`: seen, but past the expected streams.
    public struct Stream: Codable, Sendable, Equatable {
        public var stream: Int
        public var flow: String
        public var queue: Int?
        public var sent: UInt64
        public var received: UInt64
        public var lost: Int64
        public var reordered: UInt64
        public var duplicates: UInt64
        public var unexpected: Bool
        public init(stream: Int, flow: String, queue: Int?, sent: UInt64, received: UInt64, lost: Int64, reordered: UInt64, duplicates: UInt64, unexpected: Bool) {
            self.stream = stream; self.flow = flow; self.queue = queue; self.sent = sent; self.received = received
            self.lost = lost; self.reordered = reordered; self.duplicates = duplicates; self.unexpected = unexpected
        }
    }

    /// Latency percentiles of the signed packets, in nanoseconds.
    public struct Latency: Codable, Sendable, Equatable {
        public var count: UInt64, minNs: UInt64, p50Ns: UInt64, p90Ns: UInt64, p99Ns: UInt64, p999Ns: UInt64, maxNs: UInt64
        public init(_ h: LatencyHistogram) {
            count = h.count; minNs = h.count > 0 ? h.min : 0; maxNs = h.max
            p50Ns = h.percentile(0.5); p90Ns = h.percentile(0.9); p99Ns = h.percentile(0.99); p999Ns = h.percentile(0.999)
        }
        /// By name ("p50_ns", ...), as rfc2544's trials keep them.
        public var byName: [String: UInt64] {
            ["count": count, "min_ns": minNs, "p50_ns": p50Ns, "p90_ns": p90Ns, "p99_ns": p99Ns, "p999_ns": p999Ns, "max_ns": maxNs]
        }
    }

    /// The sending span over (first, last) send times in CLOCK_MONOTONIC ns.
    public static func sendingSpan(_ lanes: [(first: UInt64, last: UInt64)]) -> Double? {
        let sent = lanes.filter { $0.first > 0 }
        guard let lo = sent.map(\.first).min(), let hi = sent.map(\.last).max(), hi > lo else { return nil }
        return Double(hi - lo) / 1e9
    }
}

// MARK: Reading and writing

extension Report {
    /// The encoder of every `--json` line: sorted snake_case keys (dictionary keys as they are).
    public static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys]
        e.keyEncodingStrategy = .convertToSnakeCase
        return e
    }
    public static var decoder: JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }

    /// The last line of `text` that is a report (a command prints it last; the
    /// interval lines, banners and other text before it are skipped).
    public static func last(_ text: String) -> Report? {
        for line in text.split(separator: "\n").reversed() {
            if let r = try? decoder.decode(Report.self, from: Data(line.utf8)) { return r }
        }
        return nil
    }
}

/// One `--json` line per interval, of every command that reports live.
public struct IntervalLine: Codable, Sendable {
    public var elapsedS: Double
    public var rxPps: Double?
    public var txPps: Double?
    public var rxBps: Double?
    public var txBps: Double?
    public var laneRxPps: [Double]?
    /// Cumulative totals so far.
    public var rxPackets: UInt64?
    public var txPackets: UInt64?
    public var drops: UInt64?
    /// Frames neither free nor in a ring (0 to two bursts per lane when healthy).
    public var framesUnaccounted: Int?
    public var rssBytes: Int?
    /// The XDP sink's rate.
    public var pps: Double?
    public init(elapsedS: Double) { self.elapsedS = elapsedS }

    /// Each interval line of `text`, in order (reports and other text skipped).
    public static func lines(_ text: String) -> [IntervalLine] {
        text.split(separator: "\n").compactMap { try? Report.decoder.decode(IntervalLine.self, from: Data($0.utf8)) }
    }
}
