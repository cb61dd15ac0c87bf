import LanesCore
import LanesReport
import LanesXDP

/// The XDP program alone on a port, counting what the filter matches per RX
/// queue (per-CPU maps), then dropping it (`lanes sink`), passing it (`sink
/// --pass`) or counting it by its signature (gen's XDP receiver): no socket, no
/// lane, every queue of the port, those `ethtool -L` adds during the run
/// included. Set up by init (program loaded and attached, the kernel log opened);
/// run under `Lifecycle`.
public final class XDPCounter: RunPlane {
    public let interface: String
    public let program: XDPProgram
    /// RX queues at the start (the counts cover at least these).
    public let queuesAtStart: Int
    let kernelLog: KernelLog?

    public init(interface: String, filter: LaneFilter, action: XDPAction, streams: Int = 1, mode: XDPMode, force: Bool) throws(LanesError) {
        self.interface = interface
        queuesAtStart = try InterfaceInfo.queueCount(interface).rx
        program = try XDPProgram(filter: filter, action: action, streams: streams)
        try program.attach(interface: interface, mode: mode, force: force)
        kernelLog = KernelLog()
    }

    public func close() { program.detach() }

    /// Per queue, every queue the port has now.
    public func countersByQueue() -> [(queue: Int, counters: XDPQueueCounters)] { program.countersByQueue(atLeast: queuesAtStart) }

    public struct Outcome {
        public var exitReason: ExitReason
        public var durationS: Double
        /// The device fault that ended it, in words (nil: none), and the link's falls.
        public var fault: String?
        public var linkDownEvents: Int
    }

    /// Monitors the port (the device watch: program, MTU, resets, the interface
    /// going) until the run ends; `tick(elapsed, seconds)` every interval.
    public func run(duration: Double?, interval: Double, tick: (_ elapsed: Double, _ seconds: Double) -> Void) -> Outcome {
        let start = monotonicSeconds()
        let monitor = Monitor(duration: duration, interval: interval, poll: 0.05, watching: [interface])
        // No socket holds a queue: queues added are counted too, so only the program, the MTU and resets are watched.
        var watch = RunWatch([DeviceWatch.Port(name: interface, programID: program.attachedID, queues: [], takesLargerMTU: true)], log: kernelLog)
        let reason = monitor.run(start: start, check: { now in watch.check(now: now, start: start) }, tick: tick)
        return Outcome(exitReason: reason, durationS: monotonicSeconds() - start,
                       fault: watch.fault(endedBy: reason, monitor), linkDownEvents: watch.link.downEvents)
    }
}

extension KernelReceiver: RunPlane {
    public func close() {}
}
