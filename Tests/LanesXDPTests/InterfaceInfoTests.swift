import LanesXDP
import Testing

/// `lanes info` on recorded driver facts: each driver branch, field by field.
/// Counter names are the ENA driver's (amzn-drivers kernel/linux/ena/ena_ethtool.c:
/// ena_hw_stats_strings and ena_srd_info_strings); virtio_net's and veth's facts
/// are as this machine reports them.
@Suite struct InterfaceInfoTests {
    static let enaStats: [String: UInt64] = [
        "bw_in_allowance_exceeded": 0, "bw_out_allowance_exceeded": 12, "pps_allowance_exceeded": 1204,
        "conntrack_allowance_exceeded": 0, "linklocal_allowance_exceeded": 3, "conntrack_allowance_available": 412_000,
        "ena_srd_mode": 3, "ena_srd_tx_pkts": 9_000_000, "ena_srd_eligible_tx_pkts": 9_500_000, "ena_srd_rx_pkts": 8_700_000,
        "ena_srd_resource_utilization": 4,
        "queue_0_rx_cnt": 123, "queue_0_tx_cnt": 456, "tx_timeout": 0,
    ]
    static func channels(_ combined: Int, of max: Int) -> Ethtool.Channels {
        Ethtool.Channels(rx: 0, tx: 0, combined: combined, other: 0, maxRx: 0, maxTx: 0, maxCombined: max, maxOther: 0)
    }

    @Test func enaAtMTU9001WithAllItsQueues() {
        let f = DriverFacts(interface: "ens5", driver: "ena", driverVersion: "6.1.0", busInfo: "0000:00:05.0",
                            deviceLink: "../../../0000:00:05.0", mtu: 9001, sysfsRxQueues: 8, sysfsTxQueues: 8,
                            channels: Self.channels(8, of: 32), xdpFeatures: ["basic", "redirect", "ndo-xmit"], statistics: Self.enaStats)
        let i = InterfaceInfo(f)
        #expect(i.verdict == "enhanced networking: ENA")
        #expect(i.sriov == "none" && i.pciAddress == "0000:00:05.0" && i.rxQueues == 8 && i.txQueues == 8)
        #expect(i.xdpMTULimit == 3498)
        #expect(i.xdpMTULimitMultiBuffer == 3498, "upstream ENA XDP has no multi-buffer")
        // Exactly the allowance and ENA Express counters, none of the per-queue ones.
        #expect(Set(i.allowanceCounters.keys) == ["bw_in_allowance_exceeded", "bw_out_allowance_exceeded", "pps_allowance_exceeded",
                                                  "conntrack_allowance_exceeded", "linklocal_allowance_exceeded", "conntrack_allowance_available",
                                                  "ena_srd_mode", "ena_srd_tx_pkts", "ena_srd_eligible_tx_pkts", "ena_srd_rx_pkts", "ena_srd_resource_utilization"])
        #expect(i.allowanceCounters["pps_allowance_exceeded"] == 1204 && i.allowanceCounters["ena_srd_mode"] == 3)
        #expect(i.notes.contains { $0.contains("mtu 3498") && $0.contains("ip link set dev ens5") }, "\(i.notes)")
        #expect(!i.notes.contains { $0.contains("ethtool -L") }, "8 of 32 channels leave room for XDP TX: \(i.notes)")
        #expect(i.zeroCopy?.hasPrefix("no: the upstream ena") == true, "\(i.zeroCopy ?? "nil")")
        #expect(InterfaceInfo.xdpRefusal(interface: "ens5", driver: "ena", mtu: 9001, channels: f.channels)?.description.contains("3498") == true)
        #expect(InterfaceInfo.xdpRefusal(interface: "ens5", driver: "ena", mtu: 3498, channels: f.channels) == nil)
    }

    @Test func enaWithTooManyChannelsAndTheOutOfTreeDriver() {
        let f = DriverFacts(interface: "eth0", driver: "ena", driverVersion: "2.13.0g", mtu: 1500, channels: Self.channels(32, of: 32), statistics: [:])
        let i = InterfaceInfo(f)
        #expect(i.notes.contains { $0.contains("ethtool -L eth0 combined 16") }, "\(i.notes)")
        #expect(i.notes.contains { $0.contains("no allowance counters") })
        #expect(i.allowanceCounters.isEmpty)
        #expect(i.zeroCopy?.hasPrefix("yes: Amazon's out-of-tree ena 2.13.0g") == true, "\(i.zeroCopy ?? "nil")")
        #expect(InterfaceInfo(DriverFacts(interface: "eth0", driver: "ena", driverVersion: "2.6.1g")).zeroCopy?.hasPrefix("no: Amazon's out-of-tree ena 2.6.1g predates") == true)
        let r = InterfaceInfo.xdpRefusal(interface: "eth0", driver: "ena", mtu: 1500, channels: f.channels)
        #expect(r?.description.contains("half of its 32 channels") == true && r?.description.contains("ethtool -L eth0 combined 16") == true, "\(String(describing: r))")
    }

    @Test func efaBesideENA() {
        let f = DriverFacts(interface: "ens6", driver: "ena", mtu: 3498, rdmaDevices: [.init(name: "rdmap0s6", driver: "efa"), .init(name: "mlx5_0", driver: "mlx5_core")])
        let i = InterfaceInfo(f)
        #expect(i.efaDevices == ["rdmap0s6"])
        #expect(i.notes.contains { $0.hasPrefix("efa: rdmap0s6") && $0.contains("not AF_XDP") && $0.contains("Lanes drives the ENA side") })
    }

    @Test(arguments: [("ixgbevf", "enhanced networking: ixgbevf (Intel 82599 VF)"), ("iavf", "enhanced networking: iavf (Intel Ethernet Adaptive VF)"),
                      ("mlx5_core", "enhanced networking: mlx5 VF")])
    func virtualFunctions(driver: String, verdict: String) {
        let f = DriverFacts(interface: "eth1", driver: driver, driverVersion: "4.1.0-k", busInfo: "0000:00:06.0", deviceLink: "../../../0000:00:06.0",
                            hasPhysfn: true, channels: Self.channels(2, of: 2))
        let i = InterfaceInfo(f)
        #expect(i.sriov == "virtual-function" && i.verdict == verdict && i.xdpMTULimit == nil && i.zeroCopy == nil && i.allowanceCounters.isEmpty)
        #expect(InterfaceInfo.xdpRefusal(interface: "eth1", driver: driver, mtu: 9001, channels: f.channels) == nil)
    }

    @Test func physicalFunctionWithFourVFs() {
        let i = InterfaceInfo(DriverFacts(interface: "enp1s0f0", driver: "mlx5_core", sriovNumVFs: 4, sriovTotalVFs: 8))
        #expect(i.sriov == "physical-function (4 VFs)" && i.verdict == "mlx5 physical function (not an EC2 enhanced-networking VF)")
        #expect(InterfaceInfo(DriverFacts(interface: "enp1s0f1", driver: "ixgbe", sriovNumVFs: 0, sriovTotalVFs: 63)).sriov == "physical-function")
    }

    /// As this machine's eth0 reports: virtio_net 1.0.0, bus 0000:00:03.0, device link ../../../virtio2, one combined channel.
    @Test func virtioNetAsRecordedHere() {
        let i = InterfaceInfo(DriverFacts(interface: "eth0", driver: "virtio_net", driverVersion: "1.0.0", busInfo: "0000:00:03.0",
                                          deviceLink: "../../../virtio2", channels: Self.channels(1, of: 1), xdpFeatures: ["basic", "redirect"]))
        #expect(i.verdict == "not an enhanced-networking driver (virtio_net)" && i.sriov == "none" && i.pciAddress == nil)
        #expect(i.rxQueues == 1 && i.xdpMTULimit == nil, "\(i.notes)")
        // One queue pair and one CPU: XDP wants 1 + 1; no zero-copy in the features.
        #expect(i.notes.count == 2 && i.notes[0].hasPrefix("virtio_net: XDP wants 1 + 1 (one per CPU) queue pairs but the device has 1")
                && i.notes[1].hasPrefix("virtio_net: AF_XDP zero-copy needs Linux 6.13+"), "\(i.notes)")
    }

    /// As the VM testbed's guest reports them (QEMU 10.0.2, Linux 7.3.4, 2 CPUs):
    /// virtio_net with 2 of 2 queue pairs and zero-copy (its "XDP request 4 queues but
    /// max is 2" in dmesg), igb as a PF with two VFs, and an igbvf VF.
    @Test func theVMTestbedsDrivers() {
        var v = DriverFacts(interface: "d0", driver: "virtio_net", channels: Self.channels(2, of: 2), xdpFeatures: ["native", "redirect", "zero-copy", "multi-buffer"])
        v.cpus = 2
        let vi = InterfaceInfo(v)
        #expect(vi.notes == ["virtio_net: XDP wants 2 + 2 (one per CPU) queue pairs but the device has 2: XDP_TX and redirects into d0 share the stack's TX queues under a lock (slower); give the device 4 queue pairs (QEMU: queues=4), or 'ethtool -L d0 combined 1'"], "\(vi.notes)")
        v.channels = Self.channels(1, of: 4)
        #expect(!InterfaceInfo(v).notes.contains { $0.contains("queue pairs") }, "1 + 2 <= 4 queue pairs: no locked mode")
        var pf = DriverFacts(interface: "d1", driver: "igb", sriovNumVFs: 2, sriovTotalVFs: 7, channels: Self.channels(2, of: 8))
        pf.virtualFunctions = ["v0", "v1"]
        let pi = InterfaceInfo(pf)
        #expect(pi.sriov == "physical-function (2 VFs)" && pi.virtualFunctions == ["v0", "v1"])
        #expect(pi.notes.contains { $0.hasPrefix("igb: RSS hashes UDP by its addresses only") } && pi.notes.contains { $0.hasPrefix("igb: XDP_TX and redirects share") })
        var vf = DriverFacts(interface: "v0", driver: "igbvf", hasPhysfn: true, xdpFeatures: [])
        vf.physicalFunction = "d1"
        let fi = InterfaceInfo(vf)
        #expect(fi.sriov == "virtual-function" && fi.physicalFunction == "d1" && fi.notes.contains { $0.hasPrefix("igbvf: no native XDP") })
    }

    @Test func vethAndAnEmptyRSSKey() {
        let rss = Ethtool.RSS(hashFunction: 0, key: [], indirection: [])
        let i = InterfaceInfo(DriverFacts(interface: "d0", driver: "veth", driverVersion: "1.0", channels: Ethtool.Channels(rx: 2, tx: 2, combined: 0, other: 0, maxRx: 2, maxTx: 2, maxCombined: 0, maxOther: 0), rss: rss))
        #expect(i.rxQueues == 2 && i.txQueues == 2 && i.xdpMTULimit == 3506)
        #expect(i.notes.contains { $0.hasPrefix("veth: native XDP yes") })
        #expect(i.notes.contains { $0.contains("XDP features") }, "no features given: the note says the kernel did not report them")
        #expect(i.rss?.summaryLines.contains { $0.contains("not reported") } == true, "\(i.rss?.summaryLines ?? [])")
        #expect(!(i.rss?.summaryLines.contains { $0.hasSuffix(" ") || $0.hasSuffix("key") } ?? true))
    }
}

/// EC2's shaping over a run, from recorded counter sequences (the ena driver's names).
@Suite struct EC2ShapingTests {
    @Test func deltasAndTheirLines() throws {
        let start: [String: UInt64] = ["bw_in_allowance_exceeded": 10, "bw_out_allowance_exceeded": 0, "pps_allowance_exceeded": 500,
                                       "conntrack_allowance_exceeded": 7, "linklocal_allowance_exceeded": 1]
        var end = start
        end["pps_allowance_exceeded"] = 1704
        end["bw_out_allowance_exceeded"] = 3
        let s = try #require(EC2Shaping.between(start, end))
        #expect(s.deltas == ["bw_in_allowance_exceeded": 0, "bw_out_allowance_exceeded": 3, "pps_allowance_exceeded": 1204,
                             "conntrack_allowance_exceeded": 0, "linklocal_allowance_exceeded": 0])
        #expect(s.shaped)
        #expect(s.lines == ["bw_out_allowance_exceeded +3: EC2 shaped this run; the result is the instance's outbound bandwidth allowance, not the lanes",
                            "pps_allowance_exceeded +1,204: EC2 shaped this run; the result is the instance's PPS allowance, not the lanes"])
        // A quiet run: the counters are there, nothing rose.
        let quiet = try #require(EC2Shaping.between(start, start))
        #expect(!quiet.shaped && quiet.lines.isEmpty && quiet.deltas.count == 5)
        // conntrack_allowance_available is a gauge, not a count of shaped packets: not a delta.
        #expect(EC2Shaping.between(["conntrack_allowance_available": 9], ["conntrack_allowance_available": 3, "pps_allowance_exceeded": 0])?.deltas == ["pps_allowance_exceeded": 0])
        // A driver reset (counters went down) counts from zero.
        #expect(EC2Shaping.between(["pps_allowance_exceeded": 900], ["pps_allowance_exceeded": 40])?.deltas["pps_allowance_exceeded"] == 40)
    }

    /// Off ena (veth, virtio_net) there are no counters: no value, so the JSON field is absent, not zero.
    @Test func absentOffENA() {
        #expect(EC2Shaping.between(nil, nil) == nil)
        #expect(EC2Shaping.between([:], [:]) == nil)
        #expect(EC2Shaping.between(nil, ["queue_0_rx_cnt": 5]) == nil)
    }
}
