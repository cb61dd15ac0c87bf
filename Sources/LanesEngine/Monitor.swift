import Glibc
import LanesXDP

/// Why a run ended (the summaries' `exit_reason`).
public enum ExitReason: String, Sendable, Codable, CustomStringConvertible {
    case duration
    case sigint = "SIGINT"
    case sigterm = "SIGTERM"
    case interfaceLost = "interface lost"
    case countReached = "count reached"
    /// A lane stopped on an error it reported (live-frames transmit).
    case error
    /// The device changed under the run (`DeviceWatch`): the report says how.
    case fault

    public var description: String { rawValue }
}

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
            if sig != 0 { return sig == SIGINT ? .sigint : .sigterm }
            if watched.contains(where: { if_nametoindex($0.name) != $0.index }) { return .interfaceLost }
            let t = monotonicSeconds()
            if interval > 0 && t - lastTick >= interval {
                tick(t - start, t - lastTick)
                lastTick = t
            }
        }
    }
}

/// Counts an interface's link going down (operstate "down"), once per fall, at
/// each `check()`: the engine's and the XDP forwarder's runs carry on through it.
public struct LinkWatch {
    let interface: String
    public private(set) var downEvents = 0
    var up = true
    public init(_ interface: String) { self.interface = interface }
    public mutating func check() {
        let now = Sysfs.read("/sys/class/net/\(interface)/operstate").map { $0 != "down" } ?? true
        if !now && up { downEvents += 1 }
        up = now
    }
}

/// Faults a device brings under a running data plane that would leave a run
/// counting nothing while it says it runs: its XDP program detached or replaced
/// by someone else (`ip link set dev xdp off`, another tool's load), a queue it
/// serves gone or, where it took every queue, queues added that no lane serves
/// (`ethtool -L`), the MTU raised past what its sockets take. A run
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
        public init(name: String, programID: UInt32?, queues: [Int], servesAll: Bool = false, takesLargerMTU: Bool) {
            self.name = name
            ifindex = if_nametoindex(name)
            self.programID = programID
            self.queues = queues
            self.servesAll = servesAll
            mtu = Sysfs.mtu(of: name)
            self.takesLargerMTU = takesLargerMTU
        }
    }
    let ports: [Port]
    public init(_ ports: [Port]) { self.ports = ports }

    /// The first fault seen, in words, or nil.
    public func check() -> String? {
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
