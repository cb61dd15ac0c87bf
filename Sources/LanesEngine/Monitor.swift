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
