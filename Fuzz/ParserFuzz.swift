// libFuzzer target over Lanes' packet parser, decoder and pcap reader.
// Built by scripts/fuzz with the LanesPacket sources in one module:
//   swiftc -sanitize=fuzzer,address -parse-as-library -O Sources/LanesPacket/*.swift Fuzz/ParserFuzz.swift
// Every crash it finds becomes a regression test in Tests/LanesPacketTests/FuzzRegressionTests.swift.

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> Int32 {
    let bytes = UnsafeRawBufferPointer(start: data, count: size)
    // The frame parser, with and without checksum checks.
    let r = PacketParser.parse(bytes, verifyChecksums: true)
    _ = PacketParser.parse(bytes, verifyChecksums: false)
    precondition(r.payloadOffset >= 0 && r.payloadOffset <= size, "payload offset outside the frame")
    precondition(r.payloadLength >= 0 && r.payloadOffset + r.payloadLength <= size, "payload past the frame")
    precondition(r.stop == nil || r.stopOffset <= size, "stop offset outside the frame")
    // The decoder, as `lanes decode` uses it.
    let array = Array(bytes)
    _ = PacketSummary(index: 1, parsed: r, bytes: array, originalLength: size).line
    // In-place edits on whatever parsed.
    var copy = array
    var parsed = r
    copy.withUnsafeMutableBytes { p in
        guard let base = p.baseAddress, parsed.stop == nil else { return }
        _ = PacketEdit.decrementTTL(base, parsed)
        if parsed.layers.contains(.ipv4) { PacketEdit.rewriteIPv4(base, &parsed, src: 0xc612_0001, dst: 0xc612_0101) }
        if parsed.layers.contains(.udp) || parsed.layers.contains(.tcp) { PacketEdit.rewritePorts(base, &parsed, src: 1, dst: 2) }
    }
    // A multi-buffer packet (AF_XDP XDP_USE_SG): the same bytes over three
    // buffers, split where the input's last two bytes say. The first buffer is a
    // copy of its own, so AddressSanitizer catches a read past it. Where every
    // header lies in it, the result is the whole frame's, checksums included
    // (summed across the buffers, odd splits too).
    if size >= 16 {
        let k = 1 + Int(data[size - 1]) % (size - 1)
        let m = k + Int(data[size - 2]) % (size - k + 1)
        let head = UnsafeMutableRawBufferPointer.allocate(byteCount: k, alignment: 1)
        defer { head.deallocate() }
        head.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<k]))
        let buffers = [UnsafeRawBufferPointer(head), UnsafeRawBufferPointer(rebasing: bytes[k..<m]), UnsafeRawBufferPointer(rebasing: bytes[m...])]
        let split = PacketParser.parse(head: UnsafeRawBufferPointer(head), length: size, verifyChecksums: true) { from, count, initial in
            Checksum.sum(buffers: buffers, from: from, count: count, initial: initial)
        }
        if split.stop != .headersPastFirstBuffer {
            precondition(PacketSummary(index: 1, parsed: split, bytes: array, originalLength: size).line
                         == PacketSummary(index: 1, parsed: r, bytes: array, originalLength: size).line, "a split packet parses differently")
        }
    }
    // The pcap/pcapng reader.
    if let records = try? Pcap.read(array) {
        for rec in records { _ = rec.data.withUnsafeBytes { PacketParser.parse($0, verifyChecksums: true) } }
    }
    return 0
}
