/// Longest-prefix match over IPv4 or IPv6 addresses: a multibit trie with
/// 8-bit strides (4 levels for IPv4, 16 for IPv6) in flat arrays built once;
/// prefixes are expanded inside their last stride so each slot holds the longest
/// prefix covering it. A lookup is at most one array read per level; no
/// allocation, no reference counting.
public final class LPMTable {
    public let bits: Int
    let levels: Int
    /// Per node, 256 slots: the next hop (index + 1, 0 = none) of the longest
    /// prefix ending in this stride, its length, and the child node (0 = none).
    var hops: [UInt32] = []
    var lengths: [UInt8] = []
    var children: [UInt32] = []
    var defaultHop: UInt32 = 0
    public private(set) var count = 0
    /// Read-only views for lookups, refreshed by `freeze()`.
    var hopPtr: UnsafeMutablePointer<UInt32>? = nil
    var childPtr: UnsafeMutablePointer<UInt32>? = nil

    public init(bits: Int) {
        precondition(bits == 32 || bits == 128)
        self.bits = bits
        levels = bits / 8
        addNode()
    }

    deinit { hopPtr?.deallocate(); childPtr?.deallocate() }

    func addNode() {
        hops += [UInt32](repeating: 0, count: 256)
        lengths += [UInt8](repeating: 0, count: 256)
        children += [UInt32](repeating: 0, count: 256)
    }

    /// Adds `key` (big-endian bytes, `bits / 8` of them) / `length` -> `hop`.
    /// A later insert of the same prefix replaces the earlier one.
    public func insert(key: [UInt8], length: Int, hop: Int) {
        precondition(key.count == levels && length >= 0 && length <= bits && hop >= 0)
        count += 1
        if length == 0 { defaultHop = UInt32(hop + 1); return }
        var node = 0
        let last = (length - 1) / 8
        for level in 0..<last {
            let slot = node * 256 + Int(key[level])
            if children[slot] == 0 {
                addNode()
                children[slot] = UInt32(hops.count / 256 - 1)
            }
            node = Int(children[slot])
        }
        let rem = length - last * 8 // 1...8 bits used in this stride
        let base = Int(key[last]) & (0xff << (8 - rem)) & 0xff
        for b in base..<(base + (1 << (8 - rem))) {
            let slot = node * 256 + b
            if Int(lengths[slot]) <= length {
                hops[slot] = UInt32(hop + 1)
                lengths[slot] = UInt8(length)
            }
        }
        hopPtr?.deallocate(); childPtr?.deallocate()
        hopPtr = nil; childPtr = nil
    }

    /// Copies the tables into fixed storage for lookups. Call after the last insert.
    public func freeze() {
        hopPtr?.deallocate(); childPtr?.deallocate()
        let h = UnsafeMutablePointer<UInt32>.allocate(capacity: hops.count)
        h.initialize(from: hops, count: hops.count)
        let c = UnsafeMutablePointer<UInt32>.allocate(capacity: children.count)
        c.initialize(from: children, count: children.count)
        hopPtr = h
        childPtr = c
    }

    /// The next hop of the longest prefix covering an IPv4 address (host order), or nil.
    @inline(__always)
    public func lookup(v4 a: UInt32) -> Int? {
        lookup { UInt8(truncatingIfNeeded: a >> (24 - 8 * UInt32($0))) }
    }

    /// The next hop of the longest prefix covering an IPv6 address, or nil.
    @inline(__always)
    public func lookup(v6 a: IPv6Address) -> Int? {
        lookup { i in i < 8 ? UInt8(truncatingIfNeeded: a.high >> (56 - 8 * UInt64(i))) : UInt8(truncatingIfNeeded: a.low >> (56 - 8 * UInt64(i - 8))) }
    }

    @inline(__always)
    func lookup(_ byte: (Int) -> UInt8) -> Int? {
        guard let h = hopPtr, let c = childPtr else { preconditionFailure("LPMTable.freeze() was not called") }
        var best = defaultHop
        var node = 0
        for level in 0..<levels {
            let slot = node * 256 + Int(byte(level))
            if h[slot] != 0 { best = h[slot] }
            let next = c[slot]
            if next == 0 { break }
            node = Int(next)
        }
        return best == 0 ? nil : Int(best - 1)
    }
}

/// A route table for `lanes fwd --mode l3`, read from a file with one route a
/// line: `PREFIX/LEN NEXTHOP-MAC [PORT]` (IPv4 or IPv6; '#' starts a comment).
public struct RouteTable {
    public struct Route: Equatable, Sendable {
        public var prefix: IPAddress
        public var length: Int
        public var nextHop: MACAddress
        public var port: String?
    }

    public let routes: [Route]
    public let v4: LPMTable
    public let v6: LPMTable

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case badLine(Int, String)
        case empty
        public var description: String {
            switch self {
            case .badLine(let n, let l): "line \(n): '\(l)' is not 'PREFIX/LEN NEXTHOP-MAC [PORT]'"
            case .empty: "no routes"
            }
        }
    }

    public init(parsing text: String) throws(ParseError) {
        var routes: [Route] = []
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let w = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if w.isEmpty { continue }
            guard w.count == 2 || w.count == 3 else { throw .badLine(i + 1, String(raw)) }
            let p = w[0].split(separator: "/")
            guard p.count == 2, let addr = IPAddress(p[0]), let len = Int(p[1]), len >= 0, len <= (addr.isV6 ? 128 : 32),
                  let mac = MACAddress(w[1]) else { throw .badLine(i + 1, String(raw)) }
            routes.append(Route(prefix: addr, length: len, nextHop: mac, port: w.count == 3 ? String(w[2]) : nil))
        }
        guard !routes.isEmpty else { throw .empty }
        self.init(routes: routes)
    }

    public init(routes: [Route]) {
        self.routes = routes
        v4 = LPMTable(bits: 32)
        v6 = LPMTable(bits: 128)
        for (i, r) in routes.enumerated() {
            switch r.prefix {
            case .v4(let a):
                let v = a.value
                v4.insert(key: [UInt8(v >> 24), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)], length: r.length, hop: i)
            case .v6(let a):
                v6.insert(key: a.bytes, length: r.length, hop: i)
            }
        }
        v4.freeze()
        v6.freeze()
    }
}
