import Foundation
import Testing
@testable import LanesPacket

/// Every input in Fuzz/corpus (the seeds) and Fuzz/regressions (crashes the
/// fuzzer found, kept forever) must parse, decode and edit without trapping,
/// with offsets inside the frame: the same invariants as Fuzz/ParserFuzz.swift.
@Suite struct FuzzCorpusTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func inputs() -> [URL] {
        ["Fuzz/corpus", "Fuzz/regressions"].flatMap { dir -> [URL] in
            let d = root.appendingPathComponent(dir)
            return ((try? FileManager.default.contentsOfDirectory(at: d, includingPropertiesForKeys: nil)) ?? []).sorted { $0.path < $1.path }
        }
    }

    @Test func seedsAndRegressionsHoldTheInvariants() throws {
        let files = Self.inputs()
        #expect(files.count >= 10, "the seed corpus is missing")
        for f in files {
            let bytes = try [UInt8](Data(contentsOf: f))
            let r = bytes.withUnsafeBytes { PacketParser.parse($0, verifyChecksums: true) }
            #expect(r.payloadOffset >= 0 && r.payloadOffset + r.payloadLength <= bytes.count, "\(f.lastPathComponent)")
            #expect(r.stop == nil || r.stopOffset <= bytes.count, "\(f.lastPathComponent)")
            _ = PacketSummary(index: 1, parsed: r, bytes: bytes, originalLength: bytes.count).line
            _ = try? Pcap.read(bytes)
        }
    }
}
