/// Addresses as values, parsed from and printed to the forms users type.

public struct MACAddress: Hashable, Sendable, CustomStringConvertible {
    public var bytes: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)
    public init(_ b0: UInt8, _ b1: UInt8, _ b2: UInt8, _ b3: UInt8, _ b4: UInt8, _ b5: UInt8) { bytes = (b0, b1, b2, b3, b4, b5) }

    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var b = [UInt8]()
        for p in parts {
            guard p.count == 1 || p.count == 2, let v = UInt8(p, radix: 16) else { return nil }
            b.append(v)
        }
        self.init(b[0], b[1], b[2], b[3], b[4], b[5])
    }

    public init(reading p: UnsafeRawPointer) {
        self.init(p.load(as: UInt8.self), p.load(fromByteOffset: 1, as: UInt8.self), p.load(fromByteOffset: 2, as: UInt8.self),
                  p.load(fromByteOffset: 3, as: UInt8.self), p.load(fromByteOffset: 4, as: UInt8.self), p.load(fromByteOffset: 5, as: UInt8.self))
    }

    public var array: [UInt8] { [bytes.0, bytes.1, bytes.2, bytes.3, bytes.4, bytes.5] }

    public func write(to p: UnsafeMutableRawPointer) {
        for (i, b) in array.enumerated() { p.storeBytes(of: b, toByteOffset: i, as: UInt8.self) }
    }

    public var description: String { array.map { hex2($0) }.joined(separator: ":") }

    public static func == (a: MACAddress, b: MACAddress) -> Bool { a.array == b.array }
    public func hash(into h: inout Hasher) { h.combine(array) }
}

func hex2(_ b: UInt8) -> String {
    let d = Array("0123456789abcdef")
    return String([d[Int(b >> 4)], d[Int(b & 15)]])
}

public struct IPv4Address: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Host byte order.
    public var value: UInt32
    public init(_ value: UInt32) { self.value = value }

    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy(\.isASCII), let o = UInt8(p) else { return nil }
            v = v << 8 | UInt32(o)
        }
        value = v
    }

    public var description: String { "\(value >> 24).\(value >> 16 & 255).\(value >> 8 & 255).\(value & 255)" }
    public static func < (a: Self, b: Self) -> Bool { a.value < b.value }
}

public struct IPv6Address: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64
    public init(high: UInt64, low: UInt64) { self.high = high; self.low = low }

    public init(reading p: UnsafeRawPointer) {
        high = UInt64(bigEndian: p.loadUnaligned(as: UInt64.self))
        low = UInt64(bigEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
    }

    public func write(to p: UnsafeMutableRawPointer) {
        p.storeBytes(of: high.bigEndian, as: UInt64.self)
        p.storeBytes(of: low.bigEndian, toByteOffset: 8, as: UInt64.self)
    }

    public var groups: [UInt16] {
        (0..<4).map { UInt16(truncatingIfNeeded: high >> (48 - 16 * UInt64($0))) } +
        (0..<4).map { UInt16(truncatingIfNeeded: low >> (48 - 16 * UInt64($0))) }
    }

    public var bytes: [UInt8] { groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 255)] } }

    public init?(_ text: some StringProtocol) {
        let s = String(text)
        guard s.count >= 2, s.allSatisfy({ $0.isHexDigit || $0 == ":" }) else { return nil }
        let halves = s.components(separatedByDoubleColon: ())
        func groups(_ part: String) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            for g in part.split(separator: ":", omittingEmptySubsequences: false) {
                guard !g.isEmpty, g.count <= 4, let v = UInt16(g, radix: 16) else { return nil }
                out.append(v)
            }
            return out
        }
        var all: [UInt16]
        if halves.count == 1 {
            guard let g = groups(halves[0]), g.count == 8 else { return nil }
            all = g
        } else if halves.count == 2 {
            guard let a = groups(halves[0]), let b = groups(halves[1]), a.count + b.count <= 7 else { return nil }
            all = a + Array(repeating: 0, count: 8 - a.count - b.count) + b
        } else { return nil }
        high = all[0..<4].reduce(0) { $0 << 16 | UInt64($1) }
        low = all[4..<8].reduce(0) { $0 << 16 | UInt64($1) }
    }

    /// RFC 5952 text: lower case, longest run of zero groups (2+) as "::".
    public var description: String {
        let g = groups
        var bestStart = -1, bestLen = 0, i = 0
        while i < 8 {
            if g[i] == 0 {
                var j = i
                while j < 8 && g[j] == 0 { j += 1 }
                if j - i > bestLen && j - i >= 2 { bestStart = i; bestLen = j - i }
                i = j
            } else { i += 1 }
        }
        func hex(_ v: UInt16) -> String { String(v, radix: 16) }
        if bestStart < 0 { return g.map(hex).joined(separator: ":") }
        let head = g[0..<bestStart].map(hex).joined(separator: ":")
        let tail = g[(bestStart + bestLen)...].map(hex).joined(separator: ":")
        return head + "::" + tail
    }

    public static func < (a: Self, b: Self) -> Bool { (a.high, a.low) < (b.high, b.low) }
}

extension String {
    func components(separatedByDoubleColon _: ()) -> [String] {
        var parts: [String] = []
        var cur = ""
        var i = startIndex
        while i < endIndex {
            let n = index(after: i)
            if self[i] == ":" && n < endIndex && self[n] == ":" {
                parts.append(cur); cur = ""
                i = index(after: n)
            } else {
                cur.append(self[i]); i = n
            }
        }
        parts.append(cur)
        return parts
    }
}
