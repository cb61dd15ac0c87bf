import LanesCore
import LanesPacket

/// A test forwarder that misbehaves on purpose (`lanes fwd --mode macswap|io
/// --impair drop=N,reorder=M`): macswap (or io: unchanged to OUT), but drops every
/// Nth packet and swaps every Mth packet with the one after it, so loss and
/// reordering detection can be checked end to end.
public struct ImpairApp: LaneApp {
    let dropEvery: UInt64
    let reorderEvery: UInt64
    /// macswap back out of IN; false: io, to OUT as received.
    public var swapAddresses = true
    var seen: UInt64 = 0
    public private(set) var dropped: UInt64 = 0
    public private(set) var swapped: UInt64 = 0

    public init(dropEvery: Int, reorderEvery: Int) {
        self.dropEvery = UInt64(max(dropEvery, 0))
        self.reorderEvery = UInt64(max(reorderEvery, 0))
    }

    /// Parses `drop=N,reorder=M` (either may be missing or 0).
    public static func parse(_ text: String) -> ImpairApp? {
        var drop = 0, reorder = 0
        for part in text.split(separator: ",") {
            let kv = part.split(separator: "=")
            guard kv.count == 2, let v = Int(kv[1]), v >= 0 else { return nil }
            switch kv[0] {
            case "drop": drop = v
            case "reorder": reorder = v
            default: return nil
            }
        }
        return ImpairApp(dropEvery: drop, reorderEvery: reorder)
    }

    public mutating func process(_ burst: UnsafeMutablePointer<FrameDesc>, count: Int, context: LaneContext) -> Int {
        var n = 0
        let dropEvery = self.dropEvery
        let counters = context.counters
        var seen = self.seen
        var dropped = self.dropped
        n = LaneApps.partition(burst, count: count) { d in
            seen &+= 1
            if d.len < 14 { counters.add(.dropMalformed, 1); return false }
            if dropEvery > 0 && seen % dropEvery == 0 {
                dropped &+= 1
                counters.add(.dropApp, 1)
                return false
            }
            if self.swapAddresses { EthernetEdit.swapAddresses(context.bytes(d)) }
            return true
        }
        self.seen = seen
        self.dropped = dropped
        if reorderEvery > 0 {
            var i = 0
            while i + 1 < n {
                if (seen &+ UInt64(i)) % reorderEvery == 0 {
                    let t = burst[i]; burst[i] = burst[i + 1]; burst[i + 1] = t
                    swapped &+= 1
                    i += 2
                } else {
                    i += 1
                }
            }
        }
        return n
    }
}
