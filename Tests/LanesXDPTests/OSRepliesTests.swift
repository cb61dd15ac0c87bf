@testable import LanesXDP
import Testing

/// What LanesXDP reads from the kernel, parsed without it: netlink attributes,
/// /dev/kmsg records, sysfs device paths.
@Suite struct OSRepliesTests {
    /// Attributes as the netdev family writes them (4-byte aligned, little-endian
    /// lengths that exclude the padding): each found by type, the padding skipped.
    @Test func netlinkAttributesRoundTripWithPadding() throws {
        var buf: [UInt8] = []
        Netlink.appendAttribute(&buf, type: 1, value: UInt32(7))
        Netlink.appendAttribute(&buf, type: 2, bytes: [0xaa, 0xbb, 0xcc]) // 3 bytes: one of padding
        Netlink.appendAttribute(&buf, type: 3, value: UInt64(0x0102_0304_0506_0708))
        #expect(buf.count == 8 + 8 + 12)
        #expect(Array(try #require(Netlink.attribute(2, in: buf[...]))) == [0xaa, 0xbb, 0xcc])
        let features = try #require(Netlink.attribute(3, in: buf[...]))
        #expect(features.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) } == 0x0102_0304_0506_0708)
        #expect(Netlink.attribute(9, in: buf[...]) == nil)
        // A length running past the buffer ends the walk rather than reading past it.
        var bad = buf
        bad[0] = 200
        #expect(Netlink.attribute(3, in: bad[...]) == nil)
    }

    @Test func kernelLogRecordsGiveTheirText() {
        #expect(KernelLog.message(ofRecord: "6,1234,5678901,-;igb 0000:00:05.0: resetting\n SUBSYSTEM=pci\n DEVICE=+pci:0000:00:05.0\n")
                == "igb 0000:00:05.0: resetting")
        #expect(KernelLog.message(ofRecord: "4,9,10,c;a; semicolon in the text\n") == "a; semicolon in the text")
        #expect(KernelLog.message(ofRecord: "garbage without a prefix") == nil)
    }

    /// The PCI function under an interface: a PCI NIC's own, virtio_net's parent,
    /// a VF's own (not its PF's), none for a virtual device.
    @Test(arguments: [
        ("/sys/devices/pci0000:00/0000:00:05.0", "0000:00:05.0"),
        ("/sys/devices/pci0000:00/0000:00:04.0/virtio2", "0000:00:04.0"),
        ("/sys/devices/pci0000:00/0000:00:1c.0/0000:03:00.0/0000:03:10.1", "0000:03:10.1"),
        ("/sys/devices/virtual/net/veth0", nil),
        ("/sys/devices/platform/vif-0", nil),
    ] as [(String, String?)])
    func pciFunctionOfADevicePath(path: String, pci: String?) {
        #expect(Sysfs.pciFunction(inPath: path) == pci, "\(path)")
    }
}
