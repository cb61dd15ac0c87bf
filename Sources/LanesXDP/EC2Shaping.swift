/// EC2's shaping over a run: how much each ENA allowance counter
/// (`*_allowance_exceeded`, as the ena driver names them) rose between a reading
/// at the start and one at the end. Only ena has the counters: elsewhere there is
/// no value at all (the JSON field is absent, not zero).
public struct EC2Shaping: Codable, Sendable, Equatable {
    /// Counter name -> rise over the run (every allowance counter read, rises of 0 included).
    public var deltas: [String: UInt64]

    /// The counters that say a packet was queued or dropped for an allowance.
    public static let exceededCounters = InterfaceInfo.enaAllowanceCounters.filter { $0.hasSuffix("_exceeded") }

    /// True when some allowance was exceeded during the run.
    public var shaped: Bool { deltas.values.contains { $0 > 0 } }

    /// The rises from `start` to `end`; nil when neither reading has allowance counters.
    /// A counter that went down (the driver was reset) counts from 0.
    public static func between(_ start: [String: UInt64]?, _ end: [String: UInt64]?) -> EC2Shaping? {
        guard let end, exceededCounters.contains(where: { end[$0] != nil }) else { return nil }
        var d: [String: UInt64] = [:]
        for k in exceededCounters {
            guard let e = end[k] else { continue }
            let s = start?[k] ?? 0
            d[k] = e >= s ? e - s : e
        }
        return EC2Shaping(deltas: d)
    }

    /// The allowance counters of `interface` now (current namespace), or nil when it is not ena.
    public static func read(interface: String) -> [String: UInt64]? {
        guard let et = try? Ethtool(interface), let d = try? et.driverInfo(), d.driver == "ena" else { return nil }
        var out: [String: UInt64] = [:]
        for (k, v) in et.statistics() where exceededCounters.contains(k) { out[k] = v }
        return out
    }

    /// One line per exceeded allowance, e.g. "pps_allowance_exceeded +1,204: EC2 shaped
    /// this run; the result is the instance's PPS allowance, not the lanes".
    public var lines: [String] {
        Self.exceededCounters.compactMap { k in
            guard let v = deltas[k], v > 0 else { return nil }
            let what: String
            switch k {
            case "pps_allowance_exceeded": what = "the instance's PPS allowance"
            case "bw_in_allowance_exceeded": what = "the instance's inbound bandwidth allowance"
            case "bw_out_allowance_exceeded": what = "the instance's outbound bandwidth allowance"
            case "conntrack_allowance_exceeded": what = "the instance's connection-tracking allowance"
            default: what = "the instance's link-local allowance (DNS, metadata, time)"
            }
            return "\(k) +\(Self.grouped(v)): EC2 shaped this run; the result is \(what), not the lanes"
        }
    }

    static func grouped(_ v: UInt64) -> String {
        let s = String(v)
        var out = ""
        for (i, ch) in s.enumerated() {
            if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return out
    }
}
