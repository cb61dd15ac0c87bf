import CLanes
import Glibc
import LanesPacket

/// What a user checks before a run (`lanes info IFACE`): driver, queues, XDP
/// features, RSS, the program attached, and a verdict on enhanced networking.
public struct InterfaceInfo: Sendable, Codable {
    public var interface: String
    public var ifindex: UInt32
    public var driver: String
    public var driverVersion: String
    public var firmware: String
    public var busInfo: String
    public var pciAddress: String?
    /// "virtual-function", "physical-function" (with SR-IOV VFs) or "none".
    public var sriov: String
    /// A PF's VFs (their interfaces), and a VF's PF.
    public var virtualFunctions: [String] = []
    public var physicalFunction: String? = nil
    /// Whether RSS hashes TCP's and UDP's ports, per flow type (with `rss`).
    public var rssPortHashing: RSSPortHashing? = nil
    public var mtu: Int?
    public var numaNode: Int?
    public var mac: String?
    public var rxQueues: Int
    public var txQueues: Int
    public var channels: Ethtool.Channels?
    public var xdpFeatures: [String]?
    public var xdpFeaturesKnown: Bool
    public var rss: Ethtool.RSS?
    public var attachedXDP: AttachedXDP?
    public var verdict: String
    public var notes: [String]
    /// ENA allowance counters and ENA Express (ena_srd) counters, where present.
    public var allowanceCounters: [String: UInt64]

    /// The largest MTU with an XDP program attached, without multi-buffer, where the driver's rule is known.
    public var xdpMTULimit: Int?
    /// The largest MTU with Lanes' frags-aware program attached (XDP multi-buffer),
    /// where known: veth adds a page per fragment (MAX_SKB_FRAGS) up to its 65535;
    /// upstream ENA's XDP has no multi-buffer, so its limit stays.
    public var xdpMTULimitMultiBuffer: Int?
    /// What the loaded driver allows for AF_XDP zero-copy, where known (ena: by driver version).
    public var zeroCopy: String?
    /// EFA devices (the efa RDMA driver) beside this interface.
    public var efaDevices: [String]

    public var rssHashFunction: String? { rss?.hashFunctionName }

    /// Upstream ENA refuses XDP above this MTU (ENA_XDP_MAX_MTU: a page less headroom and overhead).
    public static let enaXDPMaxMTU = 3498
    /// veth without a frags-aware program: a page less XDP headroom (256), the skb's
    /// shared info (320 on x86-64) and the Ethernet header (14).
    public static let vethXDPMaxMTU = 4096 - 256 - 320 - 14
    /// veth with a frags-aware program: a page more per fragment (17), capped by veth's max_mtu.
    public static let vethXDPMaxMTUMultiBuffer = min(vethXDPMaxMTU + 4096 * 17, 65535)
    /// The largest frame one AF_XDP multi-buffer packet carries in copy mode: at most
    /// `segments` buffers of a frame less XDP_PACKET_HEADROOM (256) each.
    public static func afxdpFrameLimit(frameSize: Int, segments: Int) -> Int { segments * (frameSize - 256) }
    /// Amazon's out-of-tree ENA driver added AF_XDP zero-copy in r2.7.0 (its RELEASENOTES.md; "experimental" from r2.7.3).
    public static let enaZeroCopyVersion = [2, 7, 0]
    /// The allowance counters the ENA driver reports (ena_ethtool.c, ena_hw_stats_strings), in its order.
    public static let enaAllowanceCounters = ["bw_in_allowance_exceeded", "bw_out_allowance_exceeded", "pps_allowance_exceeded",
                                              "conntrack_allowance_exceeded", "linklocal_allowance_exceeded", "conntrack_allowance_available"]
    /// ENA Express (SRD) counters (ena_ethtool.c, ena_srd_info_strings).
    public static let enaSRDCounters = ["ena_srd_mode", "ena_srd_tx_pkts", "ena_srd_eligible_tx_pkts", "ena_srd_rx_pkts", "ena_srd_resource_utilization"]

    public static func gather(_ name: String) throws(LanesError) -> InterfaceInfo { InterfaceInfo(try DriverFacts.read(name)) }

    /// The report and verdict, computed from the facts alone.
    public init(_ f: DriverFacts) {
        let pci = f.deviceLink.map { String($0.split(separator: "/").last ?? "") }.flatMap { $0.contains(":") ? $0 : nil }
        let sriov: String
        if f.hasPhysfn { sriov = "virtual-function" }
        else if let n = f.sriovNumVFs, n > 0 { sriov = "physical-function (\(n) VFs)" }
        else if f.sriovTotalVFs != nil { sriov = "physical-function" }
        else { sriov = "none" }
        var notes: [String] = []
        var stats: [String: UInt64] = [:]
        var mtuLimit: Int? = nil, mtuLimitMB: Int? = nil
        var zeroCopy: String? = nil
        let rxq = InterfaceInfo.rxQueueCount(f.channels, sysfs: f.sysfsRxQueues)
        switch f.driver {
        case "veth":
            mtuLimit = InterfaceInfo.vethXDPMaxMTU
            mtuLimitMB = InterfaceInfo.vethXDPMaxMTUMultiBuffer
            notes.append("veth: native XDP yes, AF_XDP zero-copy no (copy mode); a packet sent on TX queue q arrives on the peer's RX queue q")
        case "ena":
            for k in InterfaceInfo.enaAllowanceCounters + InterfaceInfo.enaSRDCounters { if let v = f.statistics[k] { stats[k] = v } }
            mtuLimit = InterfaceInfo.enaXDPMaxMTU
            mtuLimitMB = InterfaceInfo.enaXDPMaxMTU
            if let mtu = f.mtu, mtu > InterfaceInfo.enaXDPMaxMTU {
                notes.append("ena: XDP needs an MTU of \(InterfaceInfo.enaXDPMaxMTU) or less without multi-buffer (this one is \(mtu)): ip link set dev \(f.interface) mtu \(InterfaceInfo.enaXDPMaxMTU)")
            }
            if let ch = f.channels, ch.maxCombined > 0, ch.combined > ch.maxCombined / 2 {
                notes.append("ena: XDP takes one TX queue per combined channel, so at most half of the \(ch.maxCombined) can carry traffic (\(ch.combined) now): ethtool -L \(f.interface) combined \(ch.maxCombined / 2)")
            }
            let version = f.driverVersion.split(whereSeparator: { !$0.isNumber && $0 != "." }).first.map { $0.split(separator: ".").compactMap { Int($0) } } ?? []
            if f.driverVersion.hasSuffix("g") && version.count >= 2 {
                zeroCopy = version.lexicographicallyPrecedes(InterfaceInfo.enaZeroCopyVersion)
                    ? "no: Amazon's out-of-tree ena \(f.driverVersion) predates AF_XDP zero-copy (r2.7.0); copy mode"
                    : "yes: Amazon's out-of-tree ena \(f.driverVersion) (zero-copy from r2.7.0, experimental)"
            } else {
                zeroCopy = "no: the upstream ena (\(f.driverVersion.isEmpty ? "in-tree" : f.driverVersion)) has no AF_XDP zero-copy; copy mode (Amazon's out-of-tree driver r2.7.0+ has it)"
            }
            if !f.statistics.keys.contains("pps_allowance_exceeded") {
                notes.append("ena: the driver reports no allowance counters (they need ena 2.2.10 or later and an instance that exposes them)")
            }
        case "virtio_net":
            // virtnet_xdp_set: XDP_TX and redirects want one TX queue per CPU beside
            // the stack's; with fewer queue pairs they share the stack's under a lock.
            if let ch = f.channels, ch.maxCombined > 0, ch.combined + f.cpus > ch.maxCombined {
                notes.append("virtio_net: XDP wants \(ch.combined) + \(f.cpus) (one per CPU) queue pairs but the device has \(ch.maxCombined): XDP_TX and redirects into \(f.interface) share the stack's TX queues under a lock (slower); give the device \(ch.combined + f.cpus) queue pairs (QEMU: queues=\(ch.combined + f.cpus)), or 'ethtool -L \(f.interface) combined \(max(1, ch.maxCombined - f.cpus))'")
            }
            if !(f.xdpFeatures ?? []).contains("zero-copy") {
                notes.append("virtio_net: AF_XDP zero-copy needs Linux 6.13+ and a device with VIRTIO_F_ACCESS_PLATFORM (QEMU: iommu_platform=on); copy mode here")
            }
        case "igb":
            notes.append("igb: XDP_TX and redirects share the stack's TX queues under a lock (igb has no XDP TX queues of its own); no XDP multi-buffer, so the MTU must fit one frame")
            notes.append("igb: RSS hashes UDP by its addresses only until 'ethtool -N \(f.interface) rx-flow-hash udp4 sdfn' (and udp6): Lanes' flow planner and 'lanes flows --predict' follow what the driver reports")
            if !(f.xdpFeatures ?? []).contains("zero-copy") { notes.append("igb: AF_XDP zero-copy needs Linux 6.14+; copy mode here") }
            else { notes.append("igb: zero-copy receive works; zero-copy transmit sent nothing on QEMU 10.0.2's igb with Linux 7.3 (even kicked every burst): forward or generate out of igb with --bind copy") }
        case "igbvf":
            notes.append("igbvf: no native XDP and no AF_XDP zero-copy: lane commands attach generic-mode XDP (--xdp generic, or auto, which says so) and bind in copy mode; the PF's switch delivers this VF's MAC")
        default: break
        }
        let efa = f.rdmaDevices.filter { $0.driver == "efa" }.map(\.name)
        if !efa.isEmpty {
            notes.append("efa: \(efa.joined(separator: ", ")) beside this interface: EFA traffic (libfabric over SRD) bypasses the kernel by its own road, not AF_XDP; Lanes drives the ENA side")
        }
        if f.xdpFeatures == nil { notes.append("the kernel did not report XDP features (netdev netlink family missing)") }
        if f.channels == nil { notes.append("ETHTOOL_GCHANNELS not supported; queue counts from sysfs") }
        self.init(
            interface: f.interface, ifindex: f.ifindex, driver: f.driver, driverVersion: f.driverVersion, firmware: f.firmware,
            busInfo: f.busInfo, pciAddress: pci, sriov: sriov, mtu: f.mtu, numaNode: f.numaNode, mac: f.mac,
            rxQueues: rxq, txQueues: InterfaceInfo.txQueueCount(f.channels, sysfs: f.sysfsTxQueues),
            channels: f.channels, xdpFeatures: f.xdpFeatures, xdpFeaturesKnown: f.xdpFeatures != nil, rss: f.rss,
            attachedXDP: f.attachedXDP, verdict: InterfaceInfo.verdict(driver: f.driver, sriov: sriov), notes: notes,
            allowanceCounters: stats, xdpMTULimit: mtuLimit, zeroCopy: zeroCopy, efaDevices: efa)
        xdpMTULimitMultiBuffer = mtuLimitMB
        virtualFunctions = f.virtualFunctions
        physicalFunction = f.physicalFunction
        rssPortHashing = f.rssPortHashing
    }

    init(interface: String, ifindex: UInt32, driver: String, driverVersion: String, firmware: String, busInfo: String, pciAddress: String?,
         sriov: String, mtu: Int?, numaNode: Int?, mac: String?, rxQueues: Int, txQueues: Int, channels: Ethtool.Channels?,
         xdpFeatures: [String]?, xdpFeaturesKnown: Bool, rss: Ethtool.RSS?, attachedXDP: AttachedXDP?, verdict: String, notes: [String],
         allowanceCounters: [String: UInt64], xdpMTULimit: Int?, zeroCopy: String?, efaDevices: [String]) {
        self.interface = interface; self.ifindex = ifindex; self.driver = driver; self.driverVersion = driverVersion
        self.firmware = firmware; self.busInfo = busInfo; self.pciAddress = pciAddress; self.sriov = sriov; self.mtu = mtu
        self.numaNode = numaNode; self.mac = mac; self.rxQueues = rxQueues; self.txQueues = txQueues; self.channels = channels
        self.xdpFeatures = xdpFeatures; self.xdpFeaturesKnown = xdpFeaturesKnown; self.rss = rss; self.attachedXDP = attachedXDP
        self.verdict = verdict; self.notes = notes; self.allowanceCounters = allowanceCounters; self.xdpMTULimit = xdpMTULimit
        self.zeroCopy = zeroCopy; self.efaDevices = efaDevices
    }

    /// Queue counts from ETHTOOL_GCHANNELS in either form (rx/tx, as veth reports,
    /// or combined, as most NICs do), else from sysfs.
    static func rxQueueCount(_ ch: Ethtool.Channels?, sysfs: Int) -> Int {
        let n = (ch?.rx ?? 0) + (ch?.combined ?? 0)
        return n > 0 ? n : sysfs
    }
    static func txQueueCount(_ ch: Ethtool.Channels?, sysfs: Int) -> Int {
        let n = (ch?.tx ?? 0) + (ch?.combined ?? 0)
        return n > 0 ? n : sysfs
    }

    /// The RX queue count of an interface in the current namespace (for engine set-up).
    public static func queueCount(_ name: String) throws(LanesError) -> (rx: Int, tx: Int) {
        let et = try Ethtool(name)
        _ = try et.driverInfo()
        let queues = Sysfs.list("/sys/class/net/\(name)/queues")
        let ch = et.channels()
        return (rxQueueCount(ch, sysfs: queues.filter { $0.hasPrefix("rx-") }.count),
                txQueueCount(ch, sysfs: queues.filter { $0.hasPrefix("tx-") }.count))
    }

    /// Why attaching XDP would fail on this driver, said before anything is attached
    /// (ena: the MTU, and half the channels kept free for XDP TX), or nil.
    public static func xdpRefusal(interface: String, driver: String, mtu: Int?, channels: Ethtool.Channels?) -> LanesError? {
        guard driver == "ena" else { return nil }
        if let mtu, mtu > enaXDPMaxMTU {
            return LanesError("\(interface): ena takes XDP only at an MTU of \(enaXDPMaxMTU) or less without multi-buffer (the MTU is \(mtu))",
                              fix: "ip link set dev \(interface) mtu \(enaXDPMaxMTU)")
        }
        if let ch = channels, ch.maxCombined > 0, ch.combined > ch.maxCombined / 2 {
            return LanesError("\(interface): ena takes XDP only with at most half of its \(ch.maxCombined) channels in use (\(ch.combined) are)",
                              fix: "ethtool -L \(interface) combined \(ch.maxCombined / 2)")
        }
        return nil
    }

    static func verdict(driver: String, sriov: String) -> String {
        switch driver {
        case "ena": return "enhanced networking: ENA"
        case "ixgbevf": return "enhanced networking: ixgbevf (Intel 82599 VF)"
        case "iavf": return "enhanced networking: iavf (Intel Ethernet Adaptive VF)"
        case "mlx5_core" where sriov == "virtual-function": return "enhanced networking: mlx5 VF"
        case "mlx5_core": return "mlx5 physical function (not an EC2 enhanced-networking VF)"
        default: return "not an enhanced-networking driver (\(driver))"
        }
    }
}
