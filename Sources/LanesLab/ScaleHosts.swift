import Foundation
import LanesCore
import LanesReport
import LanesXDP

// `lanes scale --gen-host A --gen-port P --dut-host B --dut-port Q`: the sweep
// between two hosts (issue 31). Each side's lanes runs on its host through the
// user's OpenSSH (`Child(_:on:access:)`, stopped by the controller or a lost
// connection); the hosts are checked first (same build, the ports' facts); each
// lane count sets both ports' channels (`ethtool -L`), as the testbed's veths get
// that many queues, and puts them back at the end; the generator plans its flows
// by the dut port's own RSS (its `lanes info --json`, copied to the generator's
// host). Reports come back typed: the same `Report` the local sweep reads.
extension ScaleRunner {
    static func runBetweenHosts(_ c: ScaleConfig, _ sides: SweepSides, stop: () -> Bool,
                                progress: (String) -> Void) throws(LanesError) -> ScaleResult {
        let access = sides.access
        let gen = try Remote.preflight(host: sides.gen.host, port: sides.gen.port, access: access)
        let dut = try Remote.preflight(host: sides.dut.host, port: sides.dut.port, access: access)
        guard let dutMAC = sides.dutMAC ?? dut.info.mac else {
            throw LanesError("\(dut.host): port \(dut.port) has no MAC address", fix: "give the MAC frames go to with --dut-mac")
        }
        func tool(_ argv: [String], on side: Remote.Side) throws(LanesError) -> String {
            try Remote.run(argv, on: side.host, access: access, check: true).stdout
        }
        // Each host's CPUs and each port's queues bound the lane counts.
        for side in [gen, dut] {
            let cpus = Int(try tool(["nproc"], on: side).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 1
            let most = side.info.channels.map { max($0.maxCombined, min($0.maxRx, $0.maxTx)) } ?? side.info.rxQueues
            if let bad = c.lanes.first(where: { $0 > cpus || $0 > max(most, 1) }) {
                throw LanesError("\(bad) lanes: \(side.host) has \(cpus) online CPUs and \(side.port) at most \(most) queues", fix: "use --lanes within 1-\(min(cpus, most))")
            }
        }
        // `ethtool -L` as the device takes it: combined channels, or RX and TX ones (veth).
        func setQueues(_ n: Int, _ side: Remote.Side) throws(LanesError) {
            let combined = (side.info.channels?.maxCombined ?? 0) > 0
            _ = try tool(["ethtool", "-L", side.port] + (combined ? ["combined", "\(n)"] : ["rx", "\(n)", "tx", "\(n)"]), on: side)
        }
        defer {
            // The ports' channels as they were.
            for side in [gen, dut] {
                if let ch = side.info.channels {
                    let back = ch.maxCombined > 0 ? ["combined", "\(ch.combined)"] : ["rx", "\(ch.rx)", "tx", "\(ch.tx)"]
                    _ = try? Remote.run(["ethtool", "-L", side.port] + back, on: side.host, access: access)
                }
            }
        }
        let rssFile = "/tmp/lanes-scale-rss-\(getpid()).json"
        defer { _ = try? Remote.run(["rm", "-f", rssFile], on: gen.host, access: access) }
        var acc: [String: Accumulated] = [:]
        var bindMode = "?"
        let total = c.lanes.count * c.flows.count * c.repeats
        var done = 0
        sweep: for r in 0..<c.repeats {
            for l in c.lanes {
                if stop() { break sweep }
                try setQueues(l, dut)
                try setQueues(l, gen)
                let queues = Array(0..<l), cores = Array(0..<l)
                for f in c.flows {
                    var a = acc["lanes \(l) \(f)"] ?? Accumulated(lanes: l, napi: .softirq)
                    var dutRun = LanesCommand(c.mode == "drop" ? .drop : .fwd, ports: [dut.port])
                    dutRun.queues = queues
                    dutRun.cores = cores
                    dutRun.filter = "udp dport 9000"
                    if c.mode == "macswap" { dutRun.mode = "macswap" }
                    if let cap = c.capBps { dutRun.extra = ["--flow-cap", LanesCommand.spell(.bps(cap))] }
                    dutRun.interval = 0.25
                    // A bound in case the controller and the connection both die without a word.
                    dutRun.duration = Double(Int(c.warmup + c.duration + 60))
                    let child = try Child(dutRun, on: dut.host, access: access)
                    var waited = 0.0
                    while waited < 30 && !stop() {
                        if xdpAttached(namespace: nil, interface: dut.port, on: dut.host, access: access) { break }
                        usleep(100_000); waited += 0.1
                    }
                    usleep(200_000)
                    if stop() { child.interrupt(); _ = child.wait(timeout: 10); break sweep }
                    // The dut port's RSS as it is now (its program attached), for the generator's
                    // plan; a device that reports no table (veth) gets the standard key and the
                    // kernel's default table, as on the testbed.
                    let now = try tool([access.lanes(on: dut.host), "info", dut.port, "--json"], on: dut)
                    let hasTable = (try? Report.decoder.decode(InterfaceInfo.self, from: Data(now.utf8)))?.rss.map { !$0.indirection.isEmpty } ?? false
                    if hasTable { _ = try tool(["sh", "-c", "printf '%s' \"$1\" > \"$2\"", "sh", now, rssFile], on: gen) }
                    var genRun = LanesCommand(.gen, ports: [gen.port])
                    genRun.queues = queues; genRun.cores = cores; genRun.flows = f; genRun.rss = true
                    genRun.rate = c.rate; genRun.duration = c.warmup + c.duration
                    genRun.extra = ["--size", "\(c.size)", "--dst-mac", dutMAC] + (hasTable ? ["--rss-table", rssFile] : [])
                        + (sides.genIP.map { ["--src-ip", $0] } ?? []) + (sides.dutIP.map { ["--dst-ip", $0] } ?? [])
                    let g = try Child(genRun, on: gen.host, access: access).wait(timeout: c.warmup + c.duration + 60, stop: stop)
                    child.interrupt()
                    let d = child.wait(timeout: 30)
                    if stop() { break sweep }
                    guard g.status == 0 else { throw LanesError("the generator on \(gen.host) failed at \(l) lanes, \(f) flows: \(g.stderr.split(whereSeparator: \.isNewline).last ?? "exit \(g.status)")") }
                    guard d.status == 0 else { throw LanesError("lanes \(c.mode) on \(dut.host) failed at \(l) lanes, \(f) flows: \(d.stderr.split(whereSeparator: \.isNewline).last ?? "exit \(d.status)")") }
                    let m = try measure(dut: d.stdout, gen: g.stdout, warmup: c.warmup, duration: c.duration)
                    a.runs.append(m.mpps)
                    a.offered.append(m.offeredMpps)
                    for (i, v) in m.perQueue.enumerated() where i < l { a.perQueue[i] += v }
                    a.policed += m.policed
                    bindMode = m.bindMode
                    a.offeredPackets += m.offeredPackets
                    a.receivedPackets += m.receivedPackets
                    // Each host's own counters stay there: drops are what the reports count.
                    var runDrops = m.drops
                    runDrops["unaccounted"] = Int64(m.offeredPackets) - Int64(m.receivedPackets) - runDrops.values.reduce(0, +)
                    for (k, v) in runDrops { a.drops[k, default: 0] += v }
                    a.cpu["generator", default: 0] += m.genCPU
                    a.cpu["dut", default: 0] += m.dutCPU
                    a.perCore.append(Double(m.receivedPackets) / 1e6 / max(m.dutCPU, 1e-9))
                    if let sh = m.shaping { for (k, v) in sh { a.shaping[k, default: 0] += v } }
                    done += 1
                    progress("[\(done)/\(total)] \(dut.host) lanes \(l) flows \(f) run \(r + 1): \(fmt(m.mpps)) Mpps received, \(fmt(m.offeredMpps)) Mpps offered by \(gen.host)")
                    acc["lanes \(l) \(f)"] = a
                }
            }
        }
        var result = ScaleRunner.result(c, points: ScaleRunner.points(acc, c), driver: dut.info.driver, bindMode: bindMode)
        result.sides = [("generator", gen), ("dut", dut)].map { role, s in
            ScaleResult.SideFacts(role: role, host: s.host.description, port: s.port, driver: s.info.driver, mtu: s.info.mtu,
                                  rxQueues: s.info.rxQueues, mac: s.info.mac, xdpFeatures: s.info.xdpFeatures)
        }
        return result
    }
}
