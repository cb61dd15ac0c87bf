import Foundation
import LanesPacket
import Testing

/// A mixed capture: VLAN, QinQ, IPv6 extension headers, fragments, TCP options,
/// ICMP, ARP, and truncated and corrupt packets.
enum MixedCapture {
    static let a = MACAddress("02:00:00:00:00:0a")!, b = MACAddress("02:00:00:00:00:0b")!

    static func frame(_ spec: FrameSpec) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: spec.frameLength)
        _ = buf.withUnsafeMutableBytes { FrameBuilder.build(spec, into: $0.baseAddress!, fill: 0x5a) }
        return buf
    }

    static func udp4(_ len: Int = 80, vlan: UInt16? = nil) -> [UInt8] {
        var s = FrameSpec(dstMAC: b, srcMAC: a, src: .v4(IPv4Address("198.18.0.1")!), dst: .v4(IPv4Address("198.18.1.1")!),
                          srcPort: 1024, dstPort: 9000, frameLength: len)
        s.vlan = vlan
        return frame(s)
    }

    static func be16(_ v: Int) -> [UInt8] { [UInt8(v >> 8 & 255), UInt8(v & 255)] }

    /// IPv6 with extension headers before a UDP datagram; checksum recomputed.
    static func ipv6(ext: [[UInt8]], extTypes: [UInt8], transport: [UInt8], proto: UInt8) -> [UInt8] {
        var f = b.array + a.array + [0x86, 0xdd]
        let payload = ext.reduce([], +) + transport
        f += [0x60, 0, 0, 0] + be16(payload.count) + [extTypes.first ?? proto, 64]
        f += IPv6Address("fd00:198:18::1")!.bytes + IPv6Address("fd00:198:18:1::1")!.bytes
        f += payload
        return f
    }

    static func udpHeader(sport: Int, dport: Int, payload: Int) -> [UInt8] {
        be16(sport) + be16(dport) + be16(8 + payload) + [0, 0] + [UInt8](repeating: 0x33, count: payload)
    }

    static func fixL4Checksum(_ f: inout [UInt8]) {
        let r = f.withUnsafeBytes { PacketParser.parse($0) }
        guard r.layers.contains(.udp) || r.layers.contains(.tcp) else { return }
        let len = r.layers.contains(.udp) ? r.udpLength : r.l3Offset + r.ipLength - r.l4Offset
        f.withUnsafeMutableBytes {
            FrameBuilder.writeTransportChecksum($0.baseAddress!, l3: r.l3Offset, l4: r.l4Offset, length: len,
                                                transport: r.ipProtocol, isV6: r.layers.contains(.ipv6))
        }
    }

    static func fixIPv4Checksum(_ f: inout [UInt8], at l3: Int) {
        let hl = Int(f[l3] & 15) * 4
        f[l3 + 10] = 0; f[l3 + 11] = 0
        let ck = f.withUnsafeBytes { Checksum.finish(Checksum.sum($0.baseAddress! + l3, count: hl)) }
        f[l3 + 10] = UInt8(ck >> 8); f[l3 + 11] = UInt8(ck & 255)
    }

    static func records() -> [PcapRecord] {
        var pkts: [(data: [UInt8], orig: Int?)] = []
        pkts.append((udp4(), nil))                                  // 1 plain UDP/IPv4
        pkts.append((udp4(96, vlan: 100), nil))                     // 2 802.1Q
        // 3 QinQ: 802.1ad 200 outside 802.1Q 300, TCP SYN with options
        var tcp = FrameSpec(dstMAC: b, srcMAC: a, src: .v4(IPv4Address("198.18.0.5")!), dst: .v4(IPv4Address("198.18.1.9")!),
                            transport: 6, srcPort: 40000, dstPort: 80, frameLength: 100)
        tcp.tcpFlags = 0x02
        var q = frame(tcp)
        q.insert(contentsOf: [0x88, 0xa8] + be16(200) + [0x81, 0x00] + be16(300), at: 12) // the builder's ethertype follows the tags
        pkts.append((q, nil))
        // 4 TCP with options: MSS, SACK permitted, timestamps, NOP, window scale (data offset 10)
        var t = frame(FrameSpec(dstMAC: b, srcMAC: a, src: .v4(IPv4Address("198.18.0.7")!), dst: .v4(IPv4Address("198.18.1.7")!),
                                transport: 6, srcPort: 5555, dstPort: 443, frameLength: 74))
        let l4 = 34
        t[l4 + 12] = 10 << 4
        t[l4 + 13] = 0x12
        let opts: [UInt8] = [2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7]
        t.replaceSubrange((l4 + 20)..<(l4 + 40), with: opts)
        fixL4Checksum(&t)
        pkts.append((t, nil))
        // 5 IPv6 hop-by-hop + destination options, then UDP
        let hbh: [UInt8] = [60, 0, 1, 4, 0, 0, 0, 0]
        let dst: [UInt8] = [17, 0, 1, 4, 0, 0, 0, 0]
        var v6 = ipv6(ext: [hbh, dst], extTypes: [0, 60], transport: udpHeader(sport: 2000, dport: 9001, payload: 12), proto: 17)
        fixL4Checksum(&v6)
        pkts.append((v6, nil))
        // 6 IPv6 fragment header (first fragment, more follow) carrying UDP
        let frag: [UInt8] = [17, 0, 0, 1, 0, 0, 0x12, 0x34]
        pkts.append((ipv6(ext: [frag], extTypes: [44], transport: udpHeader(sport: 2001, dport: 9002, payload: 16), proto: 17), nil))
        // 7 IPv4 first fragment (MF) and 8 a later fragment
        var f1 = udp4(120)
        f1[14 + 6] = 0x20; f1[14 + 7] = 0
        fixIPv4Checksum(&f1, at: 14)
        pkts.append((f1, nil))
        var f2 = udp4(120)
        f2[14 + 6] = 0x00; f2[14 + 7] = 185
        fixIPv4Checksum(&f2, at: 14)
        pkts.append((f2, nil))
        // 9 ICMP echo request, 10 ICMPv6 echo request, 11 ARP request
        var icmp = udp4(74)
        icmp[14 + 9] = 1
        fixIPv4Checksum(&icmp, at: 14)
        icmp.replaceSubrange(34..<42, with: [8, 0, 0, 0, 0x12, 0x34, 0, 1])
        let ick = icmp.withUnsafeBytes { Checksum.finish(Checksum.sum($0.baseAddress! + 34, count: 40)) }
        icmp[36] = UInt8(ick >> 8); icmp[37] = UInt8(ick & 255)
        pkts.append((icmp, nil))
        var icmp6 = ipv6(ext: [], extTypes: [], transport: [128, 0, 0, 0, 0, 7, 0, 1] + [UInt8](repeating: 1, count: 8), proto: 58)
        let pseudo = icmp6.withUnsafeBytes { Checksum.pseudoIPv6($0.baseAddress! + 14, proto: 58, length: 16) }
        let c6 = icmp6.withUnsafeBytes { Checksum.finish(Checksum.sum($0.baseAddress! + 54, count: 16, initial: pseudo)) }
        icmp6[56] = UInt8(c6 >> 8); icmp6[57] = UInt8(c6 & 255)
        pkts.append((icmp6, nil))
        let arp: [UInt8] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff] + a.array + [0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1] + a.array
            + [198, 18, 0, 1] + [0, 0, 0, 0, 0, 0] + [198, 18, 0, 2] + [UInt8](repeating: 0, count: 18)
        pkts.append((arp, nil))
        // 12 truncated capture: 30 of 80 bytes
        pkts.append((Array(udp4().prefix(30)), 80))
        // 13 IPv4 total length past the frame
        var long = udp4()
        long[16] = 0x05; long[17] = 0xdc
        fixIPv4Checksum(&long, at: 14)
        pkts.append((long, nil))
        // 14 bad UDP checksum, 15 bad IPv4 header checksum
        var badUDP = udp4(); badUDP[40] ^= 0x5a
        pkts.append((badUDP, nil))
        var badIP = udp4(); badIP[24] ^= 0x01
        pkts.append((badIP, nil))
        // 16 IHL of 4 (malformed)
        var ihl = udp4(); ihl[14] = 0x44
        pkts.append((ihl, nil))
        // 17 IPv6 UDP, plain, TCP over IPv6 (18)
        var u6 = ipv6(ext: [], extTypes: [], transport: udpHeader(sport: 9003, dport: 9004, payload: 20), proto: 17)
        fixL4Checksum(&u6)
        pkts.append((u6, nil))
        pkts.append((frame(FrameSpec(dstMAC: b, srcMAC: a, src: .v6(IPv6Address("fd00::1")!), dst: .v6(IPv6Address("fd00::2")!),
                                     transport: 6, srcPort: 7, dstPort: 8, frameLength: 90)), nil))
        return pkts.enumerated().map { PcapRecord(timestampNanos: UInt64(1_700_000_000 + $0.offset) * 1_000_000_000,
                                                  originalLength: $0.element.orig, data: $0.element.data) }
    }
}

@Suite(.serialized) struct DecodeVersusTsharkTests {
    static let tshark = ["/usr/bin/tshark"].first { FileManager.default.isExecutableFile(atPath: $0) }

    static let fields = ["frame.number", "frame.len", "frame.cap_len", "eth.src", "eth.dst", "vlan.id",
                         "ip.src", "ip.dst", "ip.ttl", "ip.proto", "ip.checksum.status", "ip.flags.mf", "ip.frag_offset",
                         "ipv6.src", "ipv6.dst", "ipv6.hlim",
                         "udp.srcport", "udp.dstport", "udp.checksum.status", "tcp.srcport", "tcp.dstport", "tcp.flags",
                         "tcp.options.mss_val", "tcp.checksum.status", "icmp.type", "icmpv6.type", "arp.opcode", "_ws.malformed",
                         "_ws.expert.severity", "_ws.short", "ieee8021ad.id"]

    @Test(.enabled(if: tshark != nil || Privileged.onCI, "tshark not installed (the README's test command installs it)"))
    func decodeAgreesWithTshark() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lanes-decode-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("mixed.pcap")
        let records = MixedCapture.records()
        try Data(Pcap.write(records)).write(to: file)
        if let keep = ProcessInfo.processInfo.environment["LANES_KEEP_MIXED_PCAP"] { // to refresh Fuzz/corpus
            try? Data(Pcap.write(records)).write(to: URL(fileURLWithPath: keep))
        }

        let ours = try lanes("decode", file.path, "--json")
        try #require(ours.status == 0, "\(ours.stderr)")
        let decoded = try ours.stdout.split(separator: "\n").map {
            try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
        }
        try #require(decoded.count == records.count)

        var args = ["-r", file.path, "-n", "-T", "fields", "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=,",
                    "-o", "ip.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE",
                    "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE"]
        for f in Self.fields { args += ["-e", f] }
        let ts = try run(args, tool: Self.tshark ?? "/usr/bin/tshark")
        try #require(ts.status == 0, "tshark failed: \(ts.stderr)")
        let rows = ts.stdout.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }
        try #require(rows.count == records.count)

        for (i, row) in rows.enumerated() {
            let cols = row.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            var t: [String: String] = [:]
            for (k, v) in zip(Self.fields, cols) where !v.isEmpty { t[k] = v }
            let o = decoded[i]
            let n = i + 1
            func first(_ k: String) -> String? { t[k]?.split(separator: ",").first.map(String.init) }
            #expect(o["length"] as? Int == Int(t["frame.len"] ?? ""), "packet \(n): length")
            #expect(o["captured_length"] as? Int == Int(t["frame.cap_len"] ?? ""), "packet \(n): captured length")
            #expect(o["eth_src"] as? String == first("eth.src"), "packet \(n): eth.src")
            #expect(o["eth_dst"] as? String == first("eth.dst"), "packet \(n): eth.dst")
            let vlans = (o["vlan_ids"] as? [Int])?.map(String.init).joined(separator: ",")
            let tsVLANs = [t["ieee8021ad.id"], t["vlan.id"]].compactMap { $0 }.joined(separator: ",")
            #expect(vlans ?? "" == tsVLANs, "packet \(n): vlan ids (802.1ad then 802.1Q)")
            let malformedByTshark = t["_ws.malformed"] != nil || t["_ws.short"] != nil || (t["_ws.expert.severity"]?.split(separator: ",").contains { Int($0) ?? 0 >= 8_388_608 } ?? false)
                || t["ip.checksum.status"] == "0" || t["udp.checksum.status"] == "0" || t["tcp.checksum.status"] == "0"
            let ourProblem = (o["malformed"] as? Bool == true) || o["ip_checksum_valid"] as? Bool == false || o["l4_checksum_valid"] as? Bool == false
            #expect(ourProblem == malformedByTshark, "packet \(n): malformed/bad checksum: ours \(o["stop"] ?? "none") vs tshark \(t)")
            if o["ip_version"] as? Int == 4 {
                #expect(o["ip_src"] as? String == first("ip.src"), "packet \(n): ip.src")
                #expect(o["ip_dst"] as? String == first("ip.dst"), "packet \(n): ip.dst")
                #expect(o["ttl"] as? Int == Int(first("ip.ttl") ?? ""), "packet \(n): ttl")
                #expect(o["ip_proto"] as? Int == Int(first("ip.proto") ?? ""), "packet \(n): proto")
                if let s = t["ip.checksum.status"] { #expect(o["ip_checksum_valid"] as? Bool == (s == "1"), "packet \(n): ip checksum") }
                if let off = o["fragment_offset"] as? Int {
                    #expect(off / 8 == Int(first("ip.frag_offset") ?? ""), "packet \(n): fragment offset (tshark counts 8-byte units)")
                    #expect((o["more_fragments"] as? Bool == true) == (first("ip.flags.mf") == "1" || first("ip.flags.mf") == "True"), "packet \(n): MF")
                }
            }
            if o["ip_version"] as? Int == 6 {
                #expect(o["ip_src"] as? String == first("ipv6.src"), "packet \(n): ipv6.src")
                #expect(o["ip_dst"] as? String == first("ipv6.dst"), "packet \(n): ipv6.dst")
                #expect(o["ttl"] as? Int == Int(first("ipv6.hlim") ?? ""), "packet \(n): hop limit")
            }
            let layers = o["layers"] as? [String] ?? []
            if layers.contains("udp") {
                #expect(o["src_port"] as? Int == Int(first("udp.srcport") ?? ""), "packet \(n): udp sport")
                #expect(o["dst_port"] as? Int == Int(first("udp.dstport") ?? ""), "packet \(n): udp dport")
                if let s = t["udp.checksum.status"], let ours = o["l4_checksum_valid"] as? Bool { #expect(ours == (s == "1"), "packet \(n): udp checksum") }
            } else {
                // Past the point where we stop (malformed) or in a later fragment, tshark may go on.
                #expect(t["udp.srcport"] == nil || o["fragment_offset"] != nil || o["malformed"] as? Bool == true,
                        "packet \(n): tshark found UDP, we did not")
            }
            if layers.contains("tcp") {
                #expect(o["src_port"] as? Int == Int(first("tcp.srcport") ?? ""), "packet \(n): tcp sport")
                #expect(o["dst_port"] as? Int == Int(first("tcp.dstport") ?? ""), "packet \(n): tcp dport")
                #expect(o["tcp_flags"] as? Int == Int((first("tcp.flags") ?? "").dropFirst(2), radix: 16), "packet \(n): tcp flags")
                #expect(o["tcp_mss"] as? Int == t["tcp.options.mss_val"].flatMap { Int($0) }, "packet \(n): mss")
                if let s = t["tcp.checksum.status"], let ours = o["l4_checksum_valid"] as? Bool { #expect(ours == (s == "1"), "packet \(n): tcp checksum") }
            } else {
                #expect(t["tcp.srcport"] == nil || o["malformed"] as? Bool == true, "packet \(n): tshark found TCP, we did not")
            }
            if layers.contains("icmp") { #expect(o["icmp_type"] as? Int == Int(first("icmp.type") ?? ""), "packet \(n): icmp type") }
            if layers.contains("icmpv6") { #expect(o["icmp_type"] as? Int == Int(first("icmpv6.type") ?? ""), "packet \(n): icmpv6 type") }
            if layers.contains("arp") { #expect(o["arp_operation"] as? Int == Int(first("arp.opcode") ?? ""), "packet \(n): arp op") }
        }
        // The capture holds every kind the issue names.
        let allLayers = decoded.flatMap { $0["layers"] as? [String] ?? [] }
        for l in ["vlan", "qinq", "ipv6-ext", "fragment", "tcp", "udp", "icmp", "icmpv6", "arp"] { #expect(allLayers.contains(l), "no \(l) packet") }
        #expect(decoded.filter { $0["malformed"] as? Bool == true }.count >= 3)
    }
}
