import ArgumentParser
import Foundation
import LanesEngine
import LanesXDP

struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "What a user checks before a run: driver, queues, XDP features, RSS, enhanced networking.",
        discussion: "Example: lanes info d0 --netns lanes-dut --json")
    @Argument(help: "Interface name.") var interface: String
    @OptionGroup var ns: NamespaceOption
    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        try ns.enter()
        let info = try InterfaceInfo.gather(interface)
        if json { return printJSON(info) }
        print("\(info.interface) (ifindex \(info.ifindex))")
        print("  driver        \(info.driver) \(info.driverVersion)" + (info.firmware.isEmpty ? "" : " firmware \(info.firmware)"))
        print("  bus           \(info.busInfo.isEmpty ? "none" : info.busInfo)" + (info.pciAddress.map { "  pci \($0)" } ?? ""))
        print("  sr-iov        \(info.sriov)" + (info.virtualFunctions.isEmpty ? "" : ": \(info.virtualFunctions.joined(separator: ", "))")
              + (info.physicalFunction.map { " of \($0)" } ?? ""))
        print("  mac           \(info.mac ?? "?")   mtu \(info.mtu.map(String.init) ?? "?")   numa node \(info.numaNode.map(String.init) ?? "none")")
        if let limit = info.xdpMTULimit {
            let mb = info.xdpMTULimitMultiBuffer.map { $0 == limit ? ", and with (no XDP multi-buffer in \(info.driver))" : ", \($0) with (frags-aware program, AF_XDP XDP_USE_SG)" } ?? ""
            print("  xdp mtu       at most \(limit) without multi-buffer\(mb)")
        }
        let segs = Engine.copyModeMaxSegments
        print("  af_xdp        multi-buffer packets of up to \(segs) buffers: frames to \(InterfaceInfo.afxdpFrameLimit(frameSize: 2048, segments: segs)) B with --frame-size 2048, \(InterfaceInfo.afxdpFrameLimit(frameSize: 4096, segments: segs)) B with 4096")
        if let zc = info.zeroCopy { print("  zero-copy     \(zc)") }
        if let ch = info.channels {
            print("  queues        rx \(ch.rx) tx \(ch.tx) combined \(ch.combined) (max rx \(ch.maxRx) tx \(ch.maxTx) combined \(ch.maxCombined))")
        } else {
            print("  queues        rx \(info.rxQueues) tx \(info.txQueues) (from sysfs)")
        }
        print("  xdp features  " + (info.xdpFeatures.map { $0.isEmpty ? "none" : $0.joined(separator: ", ") } ?? "unknown"))
        if let rss = info.rss {
            for line in rss.summaryLines { print("  " + line) }
        } else {
            print("  rss           not reported by the driver (Lanes uses the standard Toeplitz key)")
        }
        if let x = info.attachedXDP {
            print("  xdp program   \(x.name) id \(x.id) (\(x.mode))\(x.isLanes ? ", Lanes'" : "")")
        } else {
            print("  xdp program   none")
        }
        for k in InterfaceInfo.enaAllowanceCounters + InterfaceInfo.enaSRDCounters {
            if let v = info.allowanceCounters[k] { print("  \(k.padding(toLength: 30, withPad: " ", startingAt: 0)) \(v)") }
        }
        for n in info.notes { print("  note: \(n)") }
        print("  verdict       \(info.verdict)")
    }
}
