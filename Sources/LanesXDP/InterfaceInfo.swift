import CLanes
import Glibc

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

    public var rssHashFunction: String? { rss?.hashFunctionName }

    public static func gather(_ name: String) throws(LanesError) -> InterfaceInfo {
        let index = if_nametoindex(name)
        guard index != 0 else {
            throw LanesError("interface '\(name)' not found", fix: "see 'ip link', or pass --netns NS (or run 'lanes testbed up')")
        }
        let et = try Ethtool(name)
        let drv = try et.driverInfo()
        let base = "/sys/class/net/\(name)"
        let devLink = Sysfs.link("\(base)/device")
        let pci = devLink.map { String($0.split(separator: "/").last ?? "") }.flatMap { $0.contains(":") ? $0 : nil }
        let sriov: String
        if Sysfs.exists("\(base)/device/physfn") { sriov = "virtual-function" }
        else if let n = Sysfs.read("\(base)/device/sriov_numvfs").flatMap(Int.init), n > 0 { sriov = "physical-function (\(n) VFs)" }
        else if Sysfs.exists("\(base)/device/sriov_totalvfs") { sriov = "physical-function" }
        else { sriov = "none" }
        let numa = Sysfs.read("\(base)/device/numa_node").flatMap(Int.init).flatMap { $0 >= 0 ? $0 : nil }
        let queues = Sysfs.list("\(base)/queues")
        let sysRx = queues.filter { $0.hasPrefix("rx-") }.count, sysTx = queues.filter { $0.hasPrefix("tx-") }.count
        let ch = et.channels()
        let features = XDPFeatures.query(ifindex: index)
        var stats: [String: UInt64] = [:]
        if drv.driver == "ena" {
            for (k, v) in et.statistics() where k.contains("allowance_exceeded") || k.contains("ena_srd") { stats[k] = v }
        }
        var notes: [String] = []
        if drv.driver == "veth" {
            notes.append("veth: native XDP yes, AF_XDP zero-copy no (copy mode); a packet sent on TX queue q arrives on the peer's RX queue q")
        }
        if features == nil { notes.append("the kernel did not report XDP features (netdev netlink family missing)") }
        if ch == nil { notes.append("ETHTOOL_GCHANNELS not supported; queue counts from sysfs") }
        return InterfaceInfo(
            interface: name, ifindex: index, driver: drv.driver, driverVersion: drv.version, firmware: drv.firmware,
            busInfo: drv.busInfo, pciAddress: pci, sriov: sriov, mtu: Sysfs.read("\(base)/mtu").flatMap(Int.init),
            numaNode: numa, mac: Sysfs.read("\(base)/address"),
            rxQueues: rxQueueCount(ch, sysfs: sysRx), txQueues: txQueueCount(ch, sysfs: sysTx),
            channels: ch, xdpFeatures: features?.names, xdpFeaturesKnown: features != nil,
            rss: et.rss(), attachedXDP: XDPProgram.attached(ifindex: index),
            verdict: verdict(driver: drv.driver, sriov: sriov), notes: notes, allowanceCounters: stats)
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
