import Foundation

/// What the lab reads of the `--json` lines of the lanes commands it runs, typed:
/// the fields of their interval lines and reports that `scale` and `rfc2544` use,
/// under the JSON keys users read. Each field is decoded on its own and is nil
/// where a line lacks it (or holds something else under that key), so one type
/// reads an interval line, the engine's or the kernel sink's summary, gen's
/// report and `lanes info`.
public struct ReportLine: Decodable, Sendable {
    /// Interval lines.
    public var elapsedS: Double?
    public var rxPps: Double?
    /// Summaries: per lane, the program's and the socket's counters, drops by cause.
    public var lanes: [Lane]?
    public var xdp: XDP?
    public var xsk: XSK?
    public var drops: [String: Int64]?
    /// The lanes' received packets (`lanes drop`, gen's receiver); the kernel sink's are `packets`.
    public var rxPackets: UInt64?
    public var packets: UInt64?
    /// The kernel sink's socket-buffer drops.
    public var udpRcvbufErrors: Int64?
    public var bindMode: String?
    public var cpuS: Double?
    /// gen's report.
    public var txPps: Double?
    public var txPackets: UInt64?
    public var ec2Shaping: Shaping?
    /// The signed receiver's latency figures (count, min_ns, p50_ns, ... max_ns).
    public var latency: [String: UInt64]?
    /// `lanes info --json`.
    public var rxQueues: Int?

    public struct Lane: Decodable, Sendable {
        public var rxPackets: UInt64?
        enum CodingKeys: String, CodingKey { case rxPackets = "rx_packets" }
    }
    public struct XDP: Decodable, Sendable { public var policed: UInt64? }
    public struct XSK: Decodable, Sendable {
        public var rxDropped: Int64?
        enum CodingKeys: String, CodingKey { case rxDropped = "rx_dropped" }
    }
    public struct Shaping: Decodable, Sendable { public var deltas: [String: UInt64]? }

    enum CodingKeys: String, CodingKey {
        case elapsedS = "elapsed_s", rxPps = "rx_pps", lanes, xdp, xsk, drops, rxPackets = "rx_packets", packets
        case udpRcvbufErrors = "udp_rcvbuf_errors", bindMode = "bind_mode", cpuS = "cpu_s", txPps = "tx_pps", txPackets = "tx_packets"
        case ec2Shaping = "ec2_shaping", latency, rxQueues = "rx_queues"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func field<T: Decodable>(_ key: CodingKeys) -> T? { (try? c.decodeIfPresent(T.self, forKey: key)) ?? nil }
        elapsedS = field(.elapsedS); rxPps = field(.rxPps)
        lanes = field(.lanes); xdp = field(.xdp); xsk = field(.xsk); drops = field(.drops)
        rxPackets = field(.rxPackets); packets = field(.packets); udpRcvbufErrors = field(.udpRcvbufErrors)
        bindMode = field(.bindMode); cpuS = field(.cpuS); txPps = field(.txPps); txPackets = field(.txPackets)
        ec2Shaping = field(.ec2Shaping); rxQueues = field(.rxQueues); latency = field(.latency)
    }

    /// Each line of `text` that is a JSON object, in order (other lines skipped).
    public static func lines(_ text: String) -> [ReportLine] {
        text.split(separator: "\n").compactMap { try? JSONDecoder().decode(ReportLine.self, from: Data($0.utf8)) }
    }

    /// The last line of `text`, where a command prints its report (nil: none, or not JSON).
    public static func last(_ text: String) -> ReportLine? {
        text.split(separator: "\n").last.flatMap { try? JSONDecoder().decode(ReportLine.self, from: Data($0.utf8)) }
    }
}
