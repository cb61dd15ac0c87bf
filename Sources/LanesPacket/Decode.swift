/// One packet described for people and for JSON (`lanes decode`).
public struct PacketSummary: Codable, Sendable, Equatable {
    public var index: Int
    public var length: Int
    public var capturedLength: Int
    public var layers: [String]
    public var ethSrc: String?
    public var ethDst: String?
    public var etherType: String?
    public var vlanIds: [Int]?
    public var ipVersion: Int?
    public var ipSrc: String?
    public var ipDst: String?
    public var ttl: Int?
    public var ipProto: Int?
    public var ipLength: Int?
    public var ipChecksumValid: Bool?
    public var fragmentOffset: Int?
    public var moreFragments: Bool?
    public var ipv6Extensions: [Int]?
    public var srcPort: Int?
    public var dstPort: Int?
    public var tcpFlags: Int?
    public var tcpOptions: [String]?
    public var tcpMss: Int?
    public var icmpType: Int?
    public var icmpCode: Int?
    public var l4ChecksumValid: Bool?
    public var vxlanVni: Int?
    public var greProtocol: String?
    public var arpOperation: Int?
    public var arpSenderIp: String?
    public var arpTargetIp: String?
    public var payloadLength: Int?
    public var malformed: Bool
    public var stop: String?
    public var stopOffset: Int?

    public init(index: Int, record: PcapRecord) {
        let r = record.data.withUnsafeBytes { PacketParser.parse($0, verifyChecksums: true) }
        self.init(index: index, parsed: r, bytes: record.data, originalLength: record.originalLength)
    }

    public init(index: Int, parsed r: ParsedPacket, bytes: [UInt8], originalLength: Int) {
        self.index = index
        length = originalLength
        capturedLength = bytes.count
        layers = r.layers.names
        malformed = r.isMalformed
        stop = r.stop?.rawValue
        stopOffset = r.stop == nil ? nil : r.stopOffset
        guard r.layers.contains(.ethernet) else { return }
        bytes.withUnsafeBytes { b in
            ethDst = MACAddress(reading: b.baseAddress!).description
            ethSrc = MACAddress(reading: b.baseAddress! + 6).description
        }
        etherType = "0x" + hex4(r.etherType)
        if r.vlanCount > 0 { vlanIds = r.vlanList.map(Int.init) }
        if r.layers.contains(.arp) {
            arpOperation = Int(r.arpOperation)
            arpSenderIp = IPv4Address(r.arpSenderIP).description
            arpTargetIp = IPv4Address(r.arpTargetIP).description
        }
        if r.layers.contains(.ipv4) {
            ipVersion = 4
            ipSrc = IPv4Address(r.ipv4Src).description
            ipDst = IPv4Address(r.ipv4Dst).description
            ipChecksumValid = r.ipv4ChecksumValid
        } else if r.layers.contains(.ipv6) {
            ipVersion = 6
            ipSrc = r.ipv6Src.description
            ipDst = r.ipv6Dst.description
            if r.extensionCount > 0 { ipv6Extensions = r.extensionList.map(Int.init) }
        }
        if ipVersion != nil {
            ttl = Int(r.ttl)
            ipProto = Int(r.ipProtocol)
            ipLength = r.ipLength
            if r.layers.contains(.fragment) {
                fragmentOffset = Int(r.fragmentOffset) * 8
                moreFragments = r.moreFragments
            }
        }
        if r.layers.contains(.udp) || r.layers.contains(.tcp) {
            srcPort = Int(r.srcPort)
            dstPort = Int(r.dstPort)
        }
        if r.layers.contains(.tcp) {
            tcpFlags = Int(r.tcpFlags)
            let names: [(TCPOptions, String)] = [(.mss, "mss"), (.windowScale, "wscale"), (.sackPermitted, "sack_perm"),
                                                 (.sack, "sack"), (.timestamps, "timestamps"), (.other, "other")]
            tcpOptions = names.filter { r.tcpOptions.contains($0.0) }.map(\.1)
            if r.tcpOptions.contains(.mss) { tcpMss = Int(r.tcpMSS) }
        }
        if r.layers.contains(.icmpv4) || r.layers.contains(.icmpv6) {
            icmpType = Int(r.icmpType)
            icmpCode = Int(r.icmpCode)
        }
        l4ChecksumValid = r.l4ChecksumValid
        if r.layers.contains(.vxlan) { vxlanVni = Int(r.vxlanVNI) }
        if r.layers.contains(.gre) { greProtocol = "0x" + hex4(r.greProtocol) }
        payloadLength = r.payloadLength
    }

    /// One line for people.
    public var line: String {
        var s = "\(index) len \(length)"
        if capturedLength != length { s += " (captured \(capturedLength))" }
        s += " " + layers.joined(separator: "/")
        if let v = vlanIds { s += " vlan \(v.map(String.init).joined(separator: ","))" }
        if let a = ethSrc, let b = ethDst, ipSrc == nil, arpOperation == nil { s += " \(a) > \(b) type \(etherType ?? "?")" }
        if let op = arpOperation { s += " arp \(op == 1 ? "request" : op == 2 ? "reply" : "op \(op)") \(arpSenderIp ?? "") > \(arpTargetIp ?? "")" }
        if let a = ipSrc, let b = ipDst {
            if let sp = srcPort, let dp = dstPort {
                s += ipVersion == 6 ? " [\(a)]:\(sp) > [\(b)]:\(dp)" : " \(a):\(sp) > \(b):\(dp)"
            } else {
                s += " \(a) > \(b) proto \(ipProto ?? 0)"
            }
            s += " ttl \(ttl ?? 0)"
        }
        if let f = fragmentOffset { s += " frag offset \(f)\(moreFragments == true ? " +MF" : "")" }
        if let e = ipv6Extensions { s += " ext \(e.map(String.init).joined(separator: ","))" }
        if let f = tcpFlags { s += " flags 0x\(String(f, radix: 16))" }
        if let o = tcpOptions, !o.isEmpty { s += " opts \(o.joined(separator: ","))" }
        if let t = icmpType { s += " icmp type \(t) code \(icmpCode ?? 0)" }
        if let v = vxlanVni { s += " vni \(v)" }
        if let g = greProtocol { s += " gre proto \(g)" }
        if let ok = ipChecksumValid { s += ok ? " ip-csum ok" : " ip-csum BAD" }
        if let ok = l4ChecksumValid { s += ok ? " l4-csum ok" : " l4-csum BAD" }
        if let p = payloadLength { s += " payload \(p)" }
        if let stop { s += " MALFORMED: \(stop) at byte \(stopOffset ?? 0)" }
        return s
    }
}

func hex4(_ v: UInt16) -> String {
    let h = String(v, radix: 16)
    return String(repeating: "0", count: max(0, 4 - h.count)) + h
}
