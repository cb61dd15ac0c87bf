import Glibc
import LanesReport
import LanesXDP

/// The one monitor loop, on the main thread while the lanes run: it waits in
/// sigtimedwait (SIGINT and SIGTERM are blocked everywhere else), ends the run
/// at the duration, on a signal, when a watched interface disappears, or when
/// `check` says so, and calls `tick` every `interval` seconds. The engine, the
/// pipeline, the live-frames generator, the XDP receivers and the sinks all run
/// under it.
public struct Monitor {
    public var duration: Double?
    /// Seconds between ticks (0: none).
    public var interval: Double
    /// The longest wait between checks.
    public var poll: Double
    /// Interfaces whose disappearance (ifindex gone or changed: the namespace or
    /// device was removed) ends the run.
    let watched: [(name: String, index: UInt32)]

    public init(duration: Double?, interval: Double, poll: Double = 0.1, watching interfaces: [String] = []) {
        self.duration = duration
        self.interval = interval
        self.poll = poll
        watched = interfaces.map { ($0, if_nametoindex($0)) }
    }

    /// The first watched interface that is gone (its namespace or device removed,
    /// or another device of its name in its place), in words; nil while all are there.
    public var lostInterface: String? {
        watched.first(where: { if_nametoindex($0.name) != $0.index }).map { Monitor.lost($0.name) }
    }
    public static func lost(_ name: String) -> String {
        "interface \(name) disappeared (its namespace or device was removed, or another device took its name)"
    }

    /// Runs until the run ends; returns why. `check(now)` runs at every wake and
    /// may end the run; `tick(elapsed, seconds)` gets the time since `start` and
    /// since the last tick.
    public func run(start: Double = monotonicSeconds(), check: (Double) -> ExitReason? = { _ in nil },
                    tick: (_ elapsed: Double, _ seconds: Double) -> Void = { _, _ in }) -> ExitReason {
        var lastTick = start
        while true {
            let now = monotonicSeconds()
            if let duration, now - start >= duration { return .duration }
            if let r = check(now) { return r }
            var wait = poll
            if let duration { wait = min(wait, max(0.001, duration - (now - start))) }
            let sig = StopSignals.wait(seconds: wait)
            if sig != 0 { return sig == SIGINT ? .sigint : sig == SIGHUP ? .sighup : .sigterm }
            if lostInterface != nil { return .interfaceLost }
            let t = monotonicSeconds()
            if interval > 0 && t - lastTick >= interval {
                tick(t - start, t - lastTick)
                lastTick = t
            }
        }
    }
}

/// Follows the links of a run's ports (operstate "down"): each fall and each
/// return is one line on stderr with its time in the run, and the falls are
/// counted (`link_down_events`). The engine's and the XDP forwarder's runs carry
/// on through it: the sockets stay bound, the lanes wait, counting resumes when
/// the link is back. Checked at each monitor wake.
public struct LinkWatch {
    let interfaces: [String]
    public private(set) var downEvents = 0
    /// When each port's link fell (monotonic seconds), nil while it is up.
    var downSince: [Double?]
    /// A fall seen at the last check, said at the next one if the port is still
    /// there: a device being removed loses its link just before its name, and
    /// that is the monitor's "interface lost", not a fall.
    var pending: [Double?]
    public init(_ interfaces: [String]) {
        self.interfaces = interfaces
        downSince = interfaces.map { _ in nil }
        pending = downSince
    }
    static func isUp(_ interface: String) -> Bool {
        Sysfs.read("/sys/class/net/\(interface)/operstate").map { $0 != "down" } ?? true
    }
    /// `now` and `start`: monotonic seconds, now and at the run's start.
    public mutating func check(now: Double, start: Double) {
        func at(_ t: Double) -> String { String(format: "%.1f", t - start) }
        for (i, name) in interfaces.enumerated() {
            guard if_nametoindex(name) != 0 else { pending[i] = nil; continue }
            if let fell = pending[i] {
                pending[i] = nil
                downEvents += 1
                downSince[i] = fell
                printError("lanes: \(name) link down at \(at(fell)) s; the lanes wait for it\n")
            }
            let up = LinkWatch.isUp(name)
            if !up, downSince[i] == nil {
                pending[i] = now
            } else if up, let since = downSince[i] {
                downSince[i] = nil
                printError("lanes: \(name) link up at \(at(now)) s after \(String(format: "%.1f", now - since)) s down; counting goes on\n")
            }
        }
    }
}

/// Faults a device brings under a running data plane that would leave a run
/// counting nothing while it says it runs: its XDP program detached or replaced
/// by someone else (`ip link set dev xdp off`, another tool's load), a queue it
/// serves gone or, where it took every queue, queues added that no lane serves
/// (`ethtool -L`), the MTU raised past what its sockets take, its PCI function
/// reset (the kernel log's "resetting"). A run
/// ends at once on the first (its report, then a non-zero exit naming it;
/// nothing of its own is left attached, and a program someone else attached is
/// left alone). A link going down and up is not one: the lanes wait and go on
/// (`LinkWatch`). Checked at each monitor wake (every 100 ms at most).
public struct DeviceWatch {
    public struct Port {
        let name: String
        let ifindex: UInt32
        /// The program this run attached there (nil: none to watch).
        let programID: UInt32?
        /// RX queues the run serves on it, and whether that is every one it had.
        let queues: [Int]
        let servesAll: Bool
        /// The MTU at start, and whether the sockets take more (multi-buffer).
        let mtu: Int?
        let takesLargerMTU: Bool
        /// The PCI function under it (nil: virtual), whose reset the kernel logs.
        let pci: String?
        public init(name: String, programID: UInt32?, queues: [Int], servesAll: Bool = false, takesLargerMTU: Bool) {
            self.name = name
            ifindex = if_nametoindex(name)
            self.programID = programID
            self.queues = queues
            self.servesAll = servesAll
            mtu = Sysfs.mtu(of: name)
            self.takesLargerMTU = takesLargerMTU
            pci = Sysfs.pciFunction(of: name)
        }
    }
    let ports: [Port]
    /// The kernel log from the run's set-up on (nil: unreadable, and resets go unseen).
    let log: KernelLog?
    public init(_ ports: [Port], log: KernelLog?) {
        self.ports = ports
        self.log = ports.contains { $0.pci != nil } ? log : nil
    }

    /// Whether a port is gone or another device took its name.
    var aPortIsGone: Bool { ports.contains { if_nametoindex($0.name) != $0.ifindex } }

    /// The first fault seen, in words, or nil.
    public func check() -> String? {
        // A PCI function reset (sysfs 'reset', a hypervisor's FLR, AER recovery):
        // the PCI core logs "ADDRESS: resetting". igb, for one, has no reset
        // handlers and does not re-arm its queues after it (seen on QEMU's igb:
        // the program still attached, the link up, nothing arrives, for the kernel's
        // stack too, until 'ip link set dev down/up'): a run going on would count nothing.
        for m in log?.newMessages() ?? [] {
            if let p = ports.first(where: { $0.pci.map { m.contains("\($0): resetting") } ?? false }) {
                return "\(p.name)'s device (PCI \(p.pci!)) was reset under the run; its queues deliver nothing to the lanes after it"
            }
        }
        for p in ports {
            // Gone or replaced by another device of the name: the monitor's "interface lost".
            guard if_nametoindex(p.name) == p.ifindex else { continue }
            if let id = p.programID {
                let now = XDPProgram.attached(ifindex: p.ifindex)
                // Programs in two modes at once: the kernel gives no one id to compare.
                if now?.mode != "multi" && now?.id != id {
                    return "the XDP program on \(p.name) (id \(id)) was " + (now.map { "replaced by '\($0.name)' (id \($0.id))" } ?? "detached")
                        + " by someone else; the run would count nothing"
                }
            }
            if let top = p.queues.max() {
                // Fewer: the kernel refuses it while sockets are bound to the queues
                // (ethtool: "requested channel counts are too low for existing zerocopy
                // AF_XDP sockets"); a driver that did not would leave a lane with nothing.
                // More, where the lanes took every queue: RSS sends flows to queues no lane serves.
                // Counted as the engine counted them at start (channels, else sysfs).
                let rx = (try? InterfaceInfo.queueCount(p.name))?.rx ?? 0
                if rx > 0 && top >= rx { return "\(p.name) has \(rx) RX queue(s) now (ethtool -L): queue \(top), which a lane served, is gone" }
                if p.servesAll && rx > top + 1 {
                    return "\(p.name) has \(rx) RX queues now (ethtool -L): queue(s) \(top + 1)-\(rx - 1) have no lane, and their packets go to the kernel"
                }
            }
            if !p.takesLargerMTU, let was = p.mtu, let now = Sysfs.mtu(of: p.name), now > was {
                return "\(p.name)'s MTU rose from \(was) to \(now), past what its sockets were bound for (no multi-buffer)"
            }
        }
        return nil
    }
}

/// What the monitor checks under a lane run, at each wake: the ports' links
/// (`LinkWatch`: waited out, said, counted) and their devices (`DeviceWatch`: a
/// fault ends the run). The engine, the XDP forwarder and the pipeline run under it.
public struct RunWatch {
    public private(set) var link: LinkWatch
    let device: DeviceWatch
    /// The fault that ended the run, in words (nil: none).
    public private(set) var fault: String? = nil

    public init(_ ports: [DeviceWatch.Port], log: KernelLog?) {
        link = LinkWatch(ports.map(\.name))
        device = DeviceWatch(ports, log: log)
    }

    /// For `Monitor.run`'s `check`: `.fault` ends the run.
    public mutating func check(now: Double, start: Double) -> ExitReason? {
        link.check(now: now, start: start)
        guard let f = device.check() else { return nil }
        // A device being removed (its namespace deleted) loses its program and
        // its link before its name: give it 100 ms, so that it ends the run as
        // "interface lost" (the monitor's next look), not as this fault.
        for _ in 0..<5 where !device.aPortIsGone {
            usleep(20_000)
        }
        if device.aPortIsGone { return nil }
        fault = f
        return .fault
    }

    /// The report's `fault` for a run that `monitor` ended with `reason`: a port
    /// gone ends it as a fault does (its report, then the line).
    public func fault(endedBy reason: ExitReason, _ monitor: Monitor) -> String? {
        reason == .interfaceLost ? monitor.lostInterface ?? Monitor.lost(link.interfaces.first ?? "?") : fault
    }
}
