import ArgumentParser
import Foundation
import LanesCore
import LanesEngine
import LanesLab
import LanesPacket
import LanesXDP

struct DropCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drop",
        abstract: "Receive on every queue of an interface, count, and drop (recycle) each packet.",
        discussion: """
        Memory: UMEM of --frames x --frame-size per lane (default 4096 x 2048 B = 8 MiB), plus a few MiB for the process.
        \(EngineOptions<DutPort>.faultsHelp)
        Example: lanes drop d0 --netns lanes-dut --queues 0-1 --cores 0-1 --duration 10
        """)
    @OptionGroup var options: EngineOptions<DutPort>

    func run() throws {
        let config = try options.prepare()
        try options.run(config, mode: "drop") { _, _ in DropApp() }
    }
}

struct FwdCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fwd",
        abstract: "Forward packets: macswap on one port, or io, l2, l3 from IN to OUT (optionally both ways).",
        discussion: """
        --mode macswap swaps Ethernet addresses and sends each packet back out of its queue (one port).
        --mode io|l2|l3 forward lane i of IN to queue i of OUT; both sockets share the lane's UMEM,
        so no packet byte is copied in user space. l2 rewrites the MACs to --next-hop and OUT's own;
        l3 forwards as the kernel's FIB says: the XDP program looks every packet up (bpf_fib_lookup:
        policy rules, every table, every route type, ECMP by fib_multipath_hash_policy, the egress
        MTU) and hands the lane what the kernel would forward by OUT, its MACs already the next hop's
        and OUT's; the lane checks the header and decrements TTL/hop limit with the kernel's checksum
        update. Blackholes are dropped in XDP; unreachable/prohibit routes, TTL 1, packets over the
        MTU, local and unrouted destinations, unresolved neighbours and routes by another port go to
        the kernel, which answers (ICMP), fragments, resolves or forwards them: all counted by cause.
        Route changes take effect at the next packet. --routes FILE (lines 'PREFIX/LEN NEXTHOP-MAC
        [PORT]') uses a fixed longest-prefix-match table and static neighbours instead, dropping by
        cause (ttl, no route, bad checksum, non-IP). ARP and NDP are the kernel's (the program passes them).
        Default on the testbed: IN dut:d0, OUT dut:d1.
        Memory: UMEM of --frames x --frame-size per lane (default 8 MiB), plus a few MiB.
        \(EngineOptions<DutPort>.faultsHelp)
        Examples:
          lanes fwd --mode macswap --duration 10
          lanes fwd d0 d1 --netns lanes-dut --mode l3 --routes routes.txt --bidirectional
        """)
    @OptionGroup var options: EngineOptions<DutPort>
    @Argument(help: "Out interface (io, l2, l3; default on the testbed: d1).") var out: String?
    @Option(help: "Forwarding mode: io, macswap, l2, l3.") var mode = "macswap"
    @Flag(help: "Also forward OUT -> IN (io, l2, l3).") var bidirectional = false
    @Option(help: "l2: next-hop MAC for IN -> OUT (default on the testbed: sink:s0).") var nextHop: String?
    @Option(help: "l2: next-hop MAC for OUT -> IN with --bidirectional (default on the testbed: gen:g0).") var reverseNextHop: String?
    @Option(help: "l3: 'kernel' (the default): the namespace's FIB, looked up for every packet in XDP (bpf_fib_lookup); or a route file of lines 'PREFIX/LEN NEXTHOP-MAC [PORT]'.") var routes: String?
    @Option(help: "l3 --routes kernel: a DF-clear IPv4 packet over the egress MTU is passed to the kernel, which fragments it ('pass', the default), or dropped and counted ('drop').") var fragments = "pass"
    @Flag(help: "Software RSS: one RX lane (--queues N, --cores C) spreads flows over worker lanes through lock-free rings.") var pipeline = false
    @Option(help: "With --pipeline: worker cores, one OUT queue each (e.g. 0-1).") var workers: String?
    @Option(help: "Where to forward: xsk (the default: the lanes, AF_XDP sockets on pinned cores), xdp (in the XDP program, as xdp-forward: the kernel's FIB or the route file, TTL, MACs, out by a devmap; no packet crosses into user space), or auto (xdp unless an option needs the lanes or OUT takes no redirected frames; it says which and why).") var path: ForwardPath = .xsk
    @Option(help: ArgumentHelp("Test forwarder: drop every Nth packet and swap every Mth with the next (drop=N,reorder=M).", visibility: .hidden))
    var impair: String?

    func run() throws {
        guard ["macswap", "io", "l2", "l3"].contains(mode) else {
            throw LanesError("mode '\(mode)' is not available", fix: "use --mode io, macswap, l2 or l3")
        }
        if mode == "macswap" {
            if pipeline || workers != nil { throw LanesError("--pipeline and --mode macswap conflict", fix: "the pipeline forwards IN -> OUT: use --mode io, l2 or l3") }
            guard out == nil, !bidirectional else { throw LanesError("--mode macswap works on one port", fix: "drop OUT and --bidirectional, or use --mode io/l2/l3") }
            let config = try options.prepare()
            if let reason = try xdpPath(config, egress: config.interface) {
                return try runXDP(config, .macswap, label: "fwd macswap", reason: reason)
            }
            if let impair { return try runImpaired(config, impair, label: "fwd macswap", swapAddresses: true) }
            try options.run(config, mode: "fwd macswap") { _, _ in MacSwapApp() }
            return
        }
        let tb = Testbed(name: options.testbed)
        let onTestbed = options.interface == nil
        var config = try options.prepare()
        guard let outName = out ?? (onTestbed ? tb.d1.interface : nil) else {
            throw LanesError("--mode \(mode) needs an OUT interface", fix: "e.g. lanes fwd d0 d1 --netns NS --mode \(mode)")
        }
        config.outInterface = outName
        config.bidirectional = bidirectional
        func parseMAC(_ text: String?, _ flag: String, testbedDefault: String) throws -> MACAddress {
            guard let t = text ?? (onTestbed ? testbedDefault : nil) else { throw LanesError("--\(flag) is needed off the testbed", fix: "give the next hop's MAC") }
            guard let m = MACAddress(t) else { throw LanesError("bad --\(flag) '\(t)'", fix: "use six hex bytes like 02:4c:00:00:01:01") }
            return m
        }
        let inMAC = try Sysfs.mac(of: config.interface), outMAC = try Sysfs.mac(of: outName)
        let label = "fwd \(mode) \(config.interface) -> \(outName)\(bidirectional ? " (both ways)" : "")"
        var workerCores: [Int]? = nil
        if pipeline {
            guard let w = IndexList.parse(workers ?? "0") else { throw LanesError("bad --workers '\(workers ?? "")'", fix: "use cores like 0-1") }
            workerCores = w
        } else if workers != nil {
            throw LanesError("--workers needs --pipeline")
        }
        if impair != nil && (mode != "io" || bidirectional || pipeline) {
            throw LanesError("--impair works with --mode macswap or io, one way, no --pipeline")
        }
        guard ["pass", "drop"].contains(fragments) else { throw LanesError("bad --fragments '\(fragments)'", fix: "use pass or drop") }
        if fragments != "pass" && (mode != "l3" || (routes ?? "kernel") != "kernel") {
            throw LanesError("--fragments works with --mode l3 --routes kernel")
        }
        let xdp = try xdpPath(config, egress: outName)
        switch mode {
        case "io":
            if let xdp { return try runXDP(config, .io, label: label, reason: xdp) }
            if let impair { return try runImpaired(config, impair, label: label, swapAddresses: false) }
            if let workerCores { return try runPipeline(config, workerCores, label) { _ in IOApp() } }
            try options.run(config, mode: label) { _, _ in IOApp() }
        case "l2":
            let fwdHop = try parseMAC(nextHop, "next-hop", testbedDefault: tb.s0.mac)
            let revHop = bidirectional ? try parseMAC(reverseNextHop, "reverse-next-hop", testbedDefault: tb.g0.mac) : fwdHop
            if let xdp { return try runXDP(config, .l2(nextHop: fwdHop, source: outMAC), reverse: .l2(nextHop: revHop, source: inMAC), label: label, reason: xdp) }
            if let workerCores { return try runPipeline(config, workerCores, label) { _ in L2App(nextHop: fwdHop, source: outMAC) } }
            try options.run(config, mode: label, makeReverseApp: { _ in L2App(nextHop: revHop, source: inMAC) }) { _, _ in
                L2App(nextHop: fwdHop, source: outMAC)
            }
        default:
            // By default, the kernel's own routes and neighbours, followed while the lanes run.
            guard let routes, routes != "kernel" else {
                return try runKernelRoutes(config, label: label, outName: outName, workerCores: workerCores, xdp: xdp)
            }
            guard let data = FileManager.default.contents(atPath: routes) else { throw LanesError("cannot read route file '\(routes)'", fix: "check the path, or leave --routes out to use the kernel's routes") }
            let text = String(decoding: data, as: UTF8.self)
            let table: RouteTable
            do { table = try RouteTable(parsing: text) } catch { throw LanesError("bad route file '\(routes)': \(error)", fix: "write lines 'PREFIX/LEN NEXTHOP-MAC [PORT]'") }
            let inName = config.interface
            // A route's port must be one this forwarder sends on.
            for r in table.routes {
                guard let port = r.port, port != inName, port != outName else { continue }
                let why = Sysfs.exists("/sys/class/net/\(port)") ? "is not one of this forwarder's ports (\(inName), \(outName))" : "does not exist"
                throw LanesError("bad route file '\(routes)': route \(r.prefix)/\(r.length) names port '\(port)', which \(why)",
                                 fix: "name \(inName) or \(outName), or leave the port out")
            }
            if let xdp { return try runXDP(config, .routes(source: outMAC), reverse: .routes(source: inMAC), routes: table, label: label, reason: xdp) }
            if let workerCores { return try runPipeline(config, workerCores, label) { _ in L3App(routes: table, outPort: outName, source: outMAC) } }
            try options.run(config, mode: label, makeReverseApp: { _ in L3App(routes: table, outPort: inName, source: inMAC) }) { _, _ in
                L3App(routes: table, outPort: outName, source: outMAC)
            }
        }
    }

    /// The impaired test forwarder, with its drops and swaps reported after the summary.
    func runImpaired(_ config: EngineConfig, _ impair: String, label: String, swapAddresses: Bool) throws {
        guard var app = ImpairApp.parse(impair) else { throw LanesError("bad --impair '\(impair)'", fix: "use drop=N,reorder=M") }
        app.swapAddresses = swapAddresses
        let json = options.json
        try options.run(config, mode: "\(label) (impaired: \(impair))", report: { summary, apps in
            let dropped = apps.reduce(0) { $0 + $1.dropped }, swapped = apps.reduce(0) { $0 + $1.swapped }
            if json {
                var r = summary.report
                r.impairDropped = UInt64(dropped)
                r.impairSwapped = UInt64(swapped)
                printJSONLine(r)
            } else {
                options.printSummary(summary)
                print("impaired on purpose: \(dropped) dropped, \(swapped) pairs swapped")
            }
        }) { _, _ in app }
    }

    /// l3 by the kernel's FIB: one bpf_fib_lookup per packet in the XDP program,
    /// whose answer (the next hop's MACs, or a packet passed or dropped by cause)
    /// the lanes forward by; no table of their own, so nothing to follow.
    func runKernelRoutes(_ config: EngineConfig, label: String, outName: String, workerCores: [Int]?, xdp: String?) throws {
        var config = config
        config.kernelFIB = .init(dropFragmentable: fragments == "drop")
        let inName = config.interface
        let v4 = Sysfs.read("/proc/sys/net/ipv4/conf/\(inName)/forwarding") == "1"
        let v6 = Sysfs.read("/proc/sys/net/ipv6/conf/\(inName)/forwarding") == "1"
        guard v4 || v6 else {
            throw LanesError("--routes kernel: IP forwarding is off on \(inName), so the kernel would forward nothing",
                             fix: "sysctl -w net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 (in the namespace), or use --routes FILE")
        }
        var notes: [String] = []
        if !v4 { notes.append("IPv4 forwarding is off on \(inName): IPv4 packets go to the kernel") }
        if !v6 { notes.append("IPv6 forwarding is off on \(inName): IPv6 packets go to the kernel") }
        if let rp = Sysfs.read("/proc/sys/net/ipv4/conf/\(inName)/rp_filter").flatMap(Int.init),
           let all = Sysfs.read("/proc/sys/net/ipv4/conf/all/rp_filter").flatMap(Int.init), max(rp, all) > 0 {
            notes.append("rp_filter is \(max(rp, all)) on \(inName): the kernel checks sources, the lanes do not")
        }
        for fam in ["ipv4", "ipv6"] {
            if let policy = Sysfs.read("/proc/sys/net/\(fam)/fib_multipath_hash_policy").flatMap(Int.init), policy != 0 {
                notes.append("\(fam) fib_multipath_hash_policy \(policy): the kernel hashes a packet that carries a hash (the device's RX hash; on veth the sender's) by that, "
                             + "which XDP's lookup cannot see, so a flow may take another next hop of a multipath route than under the kernel (policy 0 is exact)")
            }
        }
        printError("lanes fwd: routes: the kernel's FIB, one bpf_fib_lookup per packet in XDP (rules, every table and route type, multipath, MTU); "
              + "blackholes dropped, ICMP errors, local and unresolved traffic passed to the kernel, counted by cause"
              + (notes.isEmpty ? "" : "\nlanes fwd: " + notes.joined(separator: "\nlanes fwd: ")) + "\n")
        if let xdp {
            let f = fragments == "drop"
            return try runXDP(config, .fib(try .init(interface: inName, egress: outName, dropFragmentable: f)),
                              reverse: .fib(try .init(interface: outName, egress: inName, dropFragmentable: f)),
                              label: label + ", routes by the kernel's FIB", reason: xdp)
        }
        if let workerCores { return try runPipeline(config, workerCores, label) { _ in L3FIBApp() } }
        try options.run(config, mode: label + ", routes by the kernel's FIB", makeReverseApp: { _ in L3FIBApp() }) { _, _ in L3FIBApp() }
    }

    /// `--path`: nil for the lanes, or why the run forwards in XDP. Refuses
    /// `--path xdp` with an option only the lanes serve, in one line.
    func xdpPath(_ config: EngineConfig, egress: String) throws -> String? {
        let needsLanes: String? = impair != nil ? "--impair" : pipeline ? "--pipeline" : workers != nil ? "--workers"
            : options.bind != .auto ? "--bind" : options.busyPoll ? "--busy-poll" : options.queues != nil ? "--queues"
            : options.cores != nil ? "--cores" : options.multiBuffer != .auto ? "--multi-buffer" : nil
        guard path != .xsk else { return nil }
        let info = try? InterfaceInfo.gather(config.interface)
        let egressInfo = egress == config.interface ? info : try? InterfaceInfo.gather(egress)
        let (chosen, reason) = try ForwardPath.choose(path, needsLanes: needsLanes, generic: config.xdpMode == .generic,
                                                     inDriver: info?.driver ?? "?", inFeatures: info?.xdpFeatures,
                                                     egress: egress, egressFeatures: egressInfo?.xdpFeatures)
        if chosen == .xsk { printError("lanes fwd: path xsk (\(reason))\n") }
        return chosen == .xdp ? reason : nil
    }

    /// `--path xdp`: the XDP program forwards; the same monitor, summary, JSON and metrics.
    func runXDP(_ config: EngineConfig, _ forward: XDPForwarding, reverse: XDPForwarding? = nil, routes: RouteTable? = nil,
                label: String, reason: String) throws {
        var c = XDPForwarder.Config(interface: config.interface, outInterface: config.outInterface, forward: forward)
        c.bidirectional = config.bidirectional
        c.reverse = reverse
        c.routes = routes
        c.filter = config.filter
        c.xdpMode = config.xdpMode
        c.force = config.force
        c.flowCapBps = config.flowCapBps
        let latency = options.latency, json = options.json
        try Lifecycle.run(options.runOptions(), what: "lanes fwd --path xdp", setUp: { try XDPForwarder(c) },
                          metrics: { PrometheusText.render(forwarder: $0) }, run: { f in
            printError("lanes fwd: path xdp (\(reason))" + (latency ? "; --latency: XDP forwards in the driver's receive poll, with no lane to keep awake" : "") + "\n")
            if !json {
                print("lanes \(label) on \(config.interface): forwarded in XDP, xdp \(f.program.attachedMode?.rawValue ?? "not attached"), filter '\(config.filter)'")
            }
            return try f.run(duration: options.duration, interval: options.interval, onInterval: options.printInterval)
        }, report: { summary in
            if json { printJSONLine(summary.report) } else { options.printSummary(summary) }
            try endOnFault(summary.fault, at: summary.durationS)
        })
    }

    func runPipeline<App: LaneApp>(_ config: EngineConfig, _ workerCores: [Int], _ label: String, makeApp: (Int) -> App) throws {
        let json = options.json
        try Lifecycle.run(options.runOptions(), what: "lanes fwd --pipeline", setUp: { try Pipeline(config, workerCores: workerCores) },
                          metrics: { PrometheusText.render(pipeline: $0) }, run: { p in
            if !json { print("lanes \(label), pipeline: 1 RX lane, \(workerCores.count) worker(s) on cores \(workerCores)") }
            return try p.run(duration: options.duration, interval: options.interval, onInterval: options.printInterval, makeApp: makeApp)
        }, report: { summary in
            if json { printJSONLine(summary.report) } else { options.printSummary(summary) }
            try endOnFault(summary.fault, at: summary.durationS)
            try endUnbalanced(summary)
        })
    }
}
