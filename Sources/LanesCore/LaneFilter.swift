/// Which packets a lane takes from the kernel: `ip` (IPv4 and IPv6, the default),
/// `ipv4`, `ipv6`, `udp`, `tcp`, optionally followed by `dport A` or `dport A-B`.
/// Everything that does not match gets XDP_PASS and stays with the kernel.
public struct LaneFilter: Equatable, Sendable, CustomStringConvertible {
    public struct Protocols: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// LANES_IPV4 in bpf/lanes.bpf.c
        public static let ipv4 = Protocols(rawValue: 1)
        /// LANES_IPV6 in bpf/lanes.bpf.c
        public static let ipv6 = Protocols(rawValue: 2)
        public static let ip: Protocols = [.ipv4, .ipv6]
    }

    public var protocols: Protocols
    /// IP protocol number of the transport (17 UDP, 6 TCP), or 0 for any.
    public var transport: UInt8
    /// Inclusive destination port range; nil means any port.
    public var destinationPorts: ClosedRange<UInt16>?

    public init(protocols: Protocols = .ip, transport: UInt8 = 0, destinationPorts: ClosedRange<UInt16>? = nil) {
        self.protocols = protocols
        self.transport = transport
        self.destinationPorts = destinationPorts
    }

    public static let all = LaneFilter()

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case empty
        case unknownWord(String)
        case badPortRange(String)
        case portsNeedTransport
        public var description: String {
            switch self {
            case .empty: return "empty filter; use ip, ipv4, ipv6, udp or tcp, e.g. 'udp dport 9000-9999'"
            case .unknownWord(let w): return "unknown filter word '\(w)'; use ip, ipv4, ipv6, udp, tcp, then 'dport A[-B]'"
            case .badPortRange(let s): return "bad port range '\(s)'; use a port 1-65535 or A-B with A <= B"
            case .portsNeedTransport: return "'dport' needs 'udp' or 'tcp' before it, e.g. 'udp dport 9000'"
            }
        }
    }

    /// Parses the `--filter` text.
    public init(parsing text: String) throws(ParseError) {
        let words = text.lowercased().split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard let first = words.first else { throw .empty }
        var filter = LaneFilter()
        switch first {
        case "ip": break
        case "ipv4", "ip4": filter.protocols = .ipv4
        case "ipv6", "ip6": filter.protocols = .ipv6
        case "udp": filter.transport = 17
        case "tcp": filter.transport = 6
        default: throw .unknownWord(first)
        }
        var rest = words.dropFirst()
        if let next = rest.first, filter.transport == 0, next == "udp" || next == "tcp" {
            filter.transport = next == "udp" ? 17 : 6
            rest = rest.dropFirst()
        }
        if let kw = rest.first {
            guard kw == "dport" else { throw .unknownWord(kw) }
            guard filter.transport != 0 else { throw .portsNeedTransport }
            rest = rest.dropFirst()
            guard let spec = rest.first else { throw .badPortRange("") }
            guard let range = PortRange.parse(spec) else { throw .badPortRange(spec) }
            filter.destinationPorts = range
            rest = rest.dropFirst()
            if let extra = rest.first { throw .unknownWord(extra) }
        }
        self = filter
    }

    public var description: String {
        var s: String
        switch transport {
        case 17: s = "udp"
        case 6: s = "tcp"
        default: s = protocols == .ipv4 ? "ipv4" : protocols == .ipv6 ? "ipv6" : "ip"
        }
        if transport != 0 && protocols != .ip { s = (protocols == .ipv4 ? "ipv4 " : "ipv6 ") + s }
        if let p = destinationPorts { s += p.lowerBound == p.upperBound ? " dport \(p.lowerBound)" : " dport \(p.lowerBound)-\(p.upperBound)" }
        return s
    }
}

/// Port ranges as users type them: `9000` or `9000-9999`.
public enum PortRange {
    public static func parse(_ text: some StringProtocol) -> ClosedRange<UInt16>? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2,
              let lo = UInt16(parts[0]), lo > 0 else { return nil }
        let hi = parts.count == 2 ? UInt16(parts[1]) : lo
        guard let hi, hi >= lo else { return nil }
        return lo...hi
    }
}

/// Lists of small integers as users type them: `0-3`, `1,2,4`, `0,2-3`.
public enum IndexList {
    public static func parse(_ text: String, limit: Int = 4096) -> [Int]? {
        var out: [Int] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let ends = part.split(separator: "-", omittingEmptySubsequences: false)
            guard ends.count == 1 || ends.count == 2,
                  let lo = Int(ends[0].trimmingSpaces), lo >= 0 else { return nil }
            let hi = ends.count == 2 ? Int(ends[1].trimmingSpaces) : lo
            guard let hi, hi >= lo, hi - lo < limit else { return nil }
            out.append(contentsOf: lo...hi)
        }
        guard !out.isEmpty, out.count <= limit else { return nil }
        return out
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var s = self
        while s.first == " " { s = s.dropFirst() }
        while s.last == " " { s = s.dropLast() }
        return s
    }
}
