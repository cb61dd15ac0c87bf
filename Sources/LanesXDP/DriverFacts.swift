import CLanes
import Glibc
import LanesPacket

/// What `lanes info` reads about an interface, as one plain value: ETHTOOL_GDRVINFO,
/// GSTRINGS/GSTATS, channels, RSS, the sysfs links (device, physfn, sriov_*), the
/// netdev XDP features, the program attached, and the RDMA devices beside it.
/// `InterfaceInfo(facts)` computes the report and verdict from this value alone,
/// so every driver branch is tested on recorded facts (Tests/LanesXDPTests).
public struct DriverFacts: Sendable, Codable, Equatable {
    public var interface: String
    public var ifindex: UInt32
    public var driver: String
    public var driverVersion: String
    public var firmware: String
    public var busInfo: String
    /// The target of /sys/class/net/IFACE/device, when it is a link.
    public var deviceLink: String?
    /// /sys/class/net/IFACE/device/physfn exists: this is an SR-IOV virtual function.
    public var hasPhysfn: Bool
    public var sriovNumVFs: Int?
    public var sriovTotalVFs: Int?
    public var numaNode: Int?
    public var mtu: Int?
    public var mac: String?
    public var sysfsRxQueues: Int
    public var sysfsTxQueues: Int
    public var channels: Ethtool.Channels?
    /// nil: the kernel did not say (no netdev netlink family).
    public var xdpFeatures: [String]?
    public var rss: Ethtool.RSS?
    public var attachedXDP: AttachedXDP?
    /// ETHTOOL_GSTATS by ETHTOOL_GSTRINGS name (read for ena, whose allowance and ENA Express counters the report uses).
    public var statistics: [String: UInt64]
    /// /sys/class/infiniband devices: name and driver (efa on EC2).
    public var rdmaDevices: [RDMADevice]
    /// SR-IOV: the VFs' interfaces of this PF (device/virtfnN/net/*), and the PF's
    /// interface of this VF (device/physfn/net/*).
    public var virtualFunctions: [String] = []
    public var physicalFunction: String? = nil
    /// Online CPUs (virtio_net's XDP wants a TX queue per CPU beside the stack's).
    public var cpus: Int = 1
    /// Whether RSS hashes TCP's and UDP's ports (ETHTOOL_GRXFH), where there is RSS.
    public var rssPortHashing: RSSPortHashing? = nil

    public struct RDMADevice: Sendable, Codable, Equatable {
        public var name: String
        public var driver: String
        public init(name: String, driver: String) { (self.name, self.driver) = (name, driver) }
    }

    public init(interface: String, ifindex: UInt32 = 1, driver: String, driverVersion: String = "", firmware: String = "", busInfo: String = "",
                deviceLink: String? = nil, hasPhysfn: Bool = false, sriovNumVFs: Int? = nil, sriovTotalVFs: Int? = nil, numaNode: Int? = nil,
                mtu: Int? = 1500, mac: String? = nil, sysfsRxQueues: Int = 1, sysfsTxQueues: Int = 1, channels: Ethtool.Channels? = nil,
                xdpFeatures: [String]? = nil, rss: Ethtool.RSS? = nil, attachedXDP: AttachedXDP? = nil,
                statistics: [String: UInt64] = [:], rdmaDevices: [RDMADevice] = []) {
        self.interface = interface; self.ifindex = ifindex; self.driver = driver; self.driverVersion = driverVersion
        self.firmware = firmware; self.busInfo = busInfo; self.deviceLink = deviceLink; self.hasPhysfn = hasPhysfn
        self.sriovNumVFs = sriovNumVFs; self.sriovTotalVFs = sriovTotalVFs; self.numaNode = numaNode; self.mtu = mtu
        self.mac = mac; self.sysfsRxQueues = sysfsRxQueues; self.sysfsTxQueues = sysfsTxQueues; self.channels = channels
        self.xdpFeatures = xdpFeatures; self.rss = rss; self.attachedXDP = attachedXDP; self.statistics = statistics
        self.rdmaDevices = rdmaDevices
    }

    /// Reads the facts of `name` in the current namespace.
    public static func read(_ name: String) throws(LanesError) -> DriverFacts {
        let index = if_nametoindex(name)
        guard index != 0 else {
            throw LanesError("interface '\(name)' not found", fix: "see 'ip link', or pass --netns NS (or run 'lanes testbed up')")
        }
        let et = try Ethtool(name)
        let drv = try et.driverInfo()
        let base = "/sys/class/net/\(name)"
        let queues = Sysfs.list("\(base)/queues")
        let rdma = Sysfs.list("/sys/class/infiniband").map { dev in
            RDMADevice(name: dev, driver: Sysfs.link("/sys/class/infiniband/\(dev)/device/driver").map { String($0.split(separator: "/").last ?? "") } ?? "")
        }
        let vfs = Sysfs.list("\(base)/device").filter { $0.hasPrefix("virtfn") }
            .sorted { (Int($0.dropFirst(6)) ?? 0) < (Int($1.dropFirst(6)) ?? 0) }
            .flatMap { Sysfs.list("\(base)/device/\($0)/net") }
        var facts = DriverFacts(
            interface: name, ifindex: index, driver: drv.driver, driverVersion: drv.version, firmware: drv.firmware, busInfo: drv.busInfo,
            deviceLink: Sysfs.link("\(base)/device"), hasPhysfn: Sysfs.exists("\(base)/device/physfn"),
            sriovNumVFs: Sysfs.read("\(base)/device/sriov_numvfs").flatMap(Int.init),
            sriovTotalVFs: Sysfs.read("\(base)/device/sriov_totalvfs").flatMap(Int.init),
            numaNode: Sysfs.read("\(base)/device/numa_node").flatMap(Int.init).flatMap { $0 >= 0 ? $0 : nil },
            mtu: Sysfs.read("\(base)/mtu").flatMap(Int.init), mac: Sysfs.read("\(base)/address"),
            sysfsRxQueues: queues.filter { $0.hasPrefix("rx-") }.count, sysfsTxQueues: queues.filter { $0.hasPrefix("tx-") }.count,
            channels: et.channels(), xdpFeatures: XDPFeatures.query(ifindex: index)?.names, rss: et.rss(),
            attachedXDP: XDPProgram.attached(ifindex: index),
            statistics: drv.driver == "ena" ? Dictionary(et.statistics().map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a }) : [:], rdmaDevices: rdma)
        facts.virtualFunctions = vfs
        facts.physicalFunction = Sysfs.list("\(base)/device/physfn/net").first
        facts.cpus = Sysfs.onlineCPUs()
        if facts.rss != nil { facts.rssPortHashing = et.rssPortHashing() }
        return facts
    }
}
