/// A requested rate: packets per second, or bits per second of Ethernet frames
/// (frame bytes without FCS, preamble or gap), as users type it:
/// `50000`, `50kpps`, `2Mpps`, `500Mbps`, `1Gbps`.
public enum Rate: Equatable, Sendable, CustomStringConvertible {
    case pps(Double)
    case bps(Double)

    public static func parse(_ text: String) -> Rate? {
        var s = text.lowercased().replacingAll(" ", "")
        var bits = false
        if s.hasSuffix("pps") { s.removeLast(3) } else if s.hasSuffix("bps") { s.removeLast(3); bits = true }
        var mult = 1.0
        switch s.last {
        case "k": mult = 1e3; s.removeLast()
        case "m": mult = 1e6; s.removeLast()
        case "g": mult = 1e9; s.removeLast()
        default: break
        }
        guard let v = Double(s), v > 0, v.isFinite else { return nil }
        return bits ? .bps(v * mult) : .pps(v * mult)
    }

    /// Packets per second for frames of `meanFrameBytes`.
    public func packetsPerSecond(meanFrameBytes: Double) -> Double {
        switch self {
        case .pps(let p): p
        case .bps(let b): b / (meanFrameBytes * 8)
        }
    }

    public var description: String {
        switch self {
        case .pps(let p): "\(p) pps"
        case .bps(let b): "\(b) bps"
        }
    }
}

/// Frame sizes: one size, a list (`64,128,256`, used in turn), or an IMIX
/// (`--imix` = 7:4:1 of 64/570/1518, or custom `64:7,570:4,1518:1`).
public enum FrameSizes {
    public static let simpleIMIX: [(size: Int, weight: Int)] = [(64, 7), (570, 4), (1518, 1)]

    public static func parseList(_ text: String, minimum: Int, maximum: Int) -> [Int]? {
        let parts = text.split(separator: ",")
        guard !parts.isEmpty else { return nil }
        var out: [Int] = []
        for p in parts {
            guard let v = Int(p.trimmingSpaces), v >= minimum, v <= maximum else { return nil }
            out.append(v)
        }
        return out
    }

    /// `64:7,570:4,1518:1`.
    public static func parseIMIX(_ text: String, minimum: Int, maximum: Int) -> [(size: Int, weight: Int)]? {
        let parts = text.split(separator: ",")
        guard !parts.isEmpty else { return nil }
        var out: [(Int, Int)] = []
        for p in parts {
            let sw = p.split(separator: ":")
            guard sw.count == 2, let s = Int(sw[0].trimmingSpaces), let w = Int(sw[1].trimmingSpaces),
                  s >= minimum, s <= maximum, w >= 1, w <= 1000 else { return nil }
            out.append((s, w))
        }
        return out
    }

    /// The repeating pattern of sizes an IMIX stands for, interleaved (7:4:1 ->
    /// 64,570,1518,64,570,64,570,64,570,64,64,64 style spread).
    public static func pattern(_ mix: [(size: Int, weight: Int)]) -> [Int] {
        let total = mix.reduce(0) { $0 + $1.weight }
        var out: [Int] = []
        var credit = mix.map { _ in 0 }
        for _ in 0..<total {
            for i in mix.indices { credit[i] += mix[i].weight }
            let best = credit.indices.max { credit[$0] < credit[$1] }!
            credit[best] -= total
            out.append(mix[best].size)
        }
        return out
    }
}

/// Inclusive ranges of IPv4 addresses or ports as users type them: `198.18.0.1-198.18.0.9`, `1024-2047`.
public enum RangeText {
    public static func split(_ text: String) -> (String, String) {
        if let i = text.firstIndex(of: "-") {
            return (String(text[..<i]), String(text[text.index(after: i)...]))
        }
        return (text, text)
    }
}

extension String {
    func replacingAll(_ a: Character, _ b: String) -> String {
        var s = ""
        for c in self { if c == a { s += b } else { s.append(c) } }
        return s
    }
}
