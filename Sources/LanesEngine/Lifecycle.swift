import Glibc
import LanesCore
import LanesReport
import LanesXDP

/// What every run takes alike, checked when made (step 1 of `Lifecycle.run`).
public struct RunOptions: Sendable {
    /// Seconds to run (nil: until SIGINT or SIGTERM, a count, or a fault).
    public var duration: Double?
    /// Seconds between live reports (0: none).
    public var interval: Double
    /// Where to serve Prometheus metrics (nil: nowhere).
    public var metrics: MetricsEndpoint?
    public var json: Bool

    public init(duration: Double?, interval: Double, metrics: MetricsEndpoint? = nil, json: Bool = false) throws(LanesError) {
        if let duration, !(duration > 0 && duration.isFinite) { throw LanesError("bad --duration \(duration)", fix: "give seconds > 0") }
        guard interval >= 0 && interval.isFinite else { throw LanesError("bad --interval \(interval)", fix: "give seconds >= 0 (0: no live reports)") }
        self.duration = duration
        self.interval = interval
        self.metrics = metrics
        self.json = json
    }
}

/// What step 3 of `Lifecycle.run` does to the process's capabilities.
public enum RunPrivileges: Sendable {
    /// Keep only CAP_NET_ADMIN (to detach at the end): every run on an interface.
    case keepOnlyNetAdmin
    /// Leave them: a plane that opened nothing privileged (the in-memory port of
    /// tests and benchmarks, where the process goes on after the run).
    case unchanged
}

/// A thread or service a run declares beside its lanes (the metrics server, the
/// capture writer): started once set-up is done, the privileges dropped and the
/// stop signals blocked (it inherits both), before the lanes; stopped after they
/// drained, before the report. A helper that fails to start ends the run before
/// any lane runs.
public struct RunHelper {
    public let name: String
    let start: () throws -> Void
    let stop: () -> Void
    public init(_ name: String, start: @escaping () throws -> Void, stop: @escaping () -> Void) {
        self.name = name; self.start = start; self.stop = stop
    }
}

/// A data plane `Lifecycle.run` runs: set up by its initializer (sockets, rings,
/// maps, programs and the kernel log opened while the process still holds its
/// privileges); `close` gives back what it attached (it may be called twice).
/// The engine, the pipeline, the XDP forwarder, the live-frames generator, the
/// XDP counter (sink, gen's XDP receiver) and the kernel receiver are ones.
public protocol RunPlane: AnyObject {
    func close()
}

/// The one order every run follows (drop, fwd on both paths and the pipeline,
/// gen on both transmit paths and its receivers, sink and the kernel sink,
/// capture, replay); a command builds the plan and hands it over:
/// 1. options checked: `RunOptions`, what the command refuses (`refusing`, one
///    line each), `--metrics` where the plane serves none;
/// 2. set up (`setUp`), with the stop signals (SIGINT, SIGTERM, SIGHUP) already
///    blocked, in this thread and so in every thread started later: step 4 comes
///    first, so that a signal during set-up is held until the monitor and ends
///    the run at its first look, rather than killing the process with a program
///    attached;
/// 3. privileges dropped to CAP_NET_ADMIN (kept to detach at the end);
/// 4. (done before 2, see there);
/// 5. helpers started: the metrics server first, then the declared ones;
/// 6-8. `run`: the lanes started, monitored (`Monitor`), drained;
/// 9. helpers stopped (in reverse), the plane closed (nothing left attached);
/// 10. `report`.
/// On an error at any step, what was started is stopped and the plane closed.
public enum Lifecycle {
    @discardableResult
    public static func run<Plane: RunPlane, Outcome>(
        _ options: RunOptions, what: String, refusing refusals: [String] = [],
        privileges: RunPrivileges = .keepOnlyNetAdmin,
        setUp: () throws -> Plane,
        metrics: ((Plane) -> String)? = nil,
        helpers: (Plane) -> [RunHelper] = { _ in [] },
        run: (Plane) throws -> Outcome,
        report: (Outcome) throws -> Void
    ) throws -> Outcome {
        // 1.
        if let first = refusals.first { throw LanesError(first) }
        if options.metrics != nil && metrics == nil {
            throw LanesError("--metrics: \(what) serves no metrics", fix: "drop --metrics")
        }
        // 4., then 2.: blocked before set-up (see above); threads inherit the mask.
        StopSignals.block()
        let plane = try setUp()
        var closed = false
        defer { if !closed { plane.close() } }
        // 3.
        if privileges == .keepOnlyNetAdmin { try Privileges.keepOnlyNetAdmin() }
        // 5.
        var started: [RunHelper] = []
        defer { for h in started.reversed() { h.stop() } }
        if let endpoint = options.metrics, let metrics {
            let server = try MetricsServer(endpoint) { metrics(plane) }
            printError("lanes: serving metrics at \(server.endpoint.url)\n")
            // No scrape after the run: the report may free what the metrics read (histograms).
            started.append(RunHelper("metrics server", start: {}, stop: { server.shutdown() }))
        }
        for h in helpers(plane) {
            do { try h.start() } catch { throw LanesError("\(what): the \(h.name) did not start: \(error)") }
            started.append(h)
        }
        // 6-8.
        let outcome = try run(plane)
        // 9.
        for h in started.reversed() { h.stop() }
        started = []
        plane.close()
        closed = true
        // 10.
        try report(outcome)
        return outcome
    }
}

extension Engine: RunPlane {}
extension Pipeline: RunPlane {}
extension XDPForwarder: RunPlane {}
extension LiveGenerator: RunPlane {
    public func close() { program.detach() }
}

/// A fault that ended a run (`DeviceWatch`), after its report: one line, a non-zero exit.
public func endOnFault(_ fault: String?, at seconds: Double) throws(LanesError) {
    if let fault { throw LanesError("the run ended at \(String(format: "%.1f", seconds)) s: \(fault)") }
}

/// A report whose frames do not balance: after it, one line naming each lane's ledger.
public func endUnbalanced(_ summary: RunSummary) throws(LanesError) {
    if !summary.framesBalanced {
        throw LanesError("frame accounting does not balance: " + summary.lanes.map { "q\($0.queue) \($0.frames)" }.joined(separator: "; "))
    }
}
