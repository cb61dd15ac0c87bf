import LanesEngine
import LanesReport
import LanesXDP
import Synchronization
import Testing

/// The one lifecycle's order, with a plane that records what happens to it (root
/// free: the privileges are left as they are, `RunPrivileges.unchanged`).
@Suite struct LifecycleTests {
    final class Log: Sendable {
        let events = Mutex<[String]>([])
        func add(_ e: String) { events.withLock { $0.append(e) } }
        var all: [String] { events.withLock { $0 } }
    }
    final class Plane: RunPlane {
        let log: Log
        init(_ log: Log) { self.log = log; log.add("set up") }
        func close() { log.add("close") }
    }
    struct Failure: Error {}

    static func run(_ log: Log, options: RunOptions, refusing: [String] = [], metrics: Bool = false,
                    failIn step: String? = nil) throws {
        try Lifecycle.run(options, what: "a test run", refusing: refusing, privileges: .unchanged,
                          setUp: { () throws -> Plane in if step == "set up" { throw Failure() }; return Plane(log) },
                          metrics: metrics ? { _ in "m 1\n" } : nil,
                          helpers: { _ in [RunHelper("first helper", start: { log.add("start first") }, stop: { log.add("stop first") }),
                                           RunHelper("second helper", start: { if step == "helper" { throw Failure() }; log.add("start second") },
                                                     stop: { log.add("stop second") })] },
                          run: { _ in log.add("run"); if step == "run" { throw Failure() }; return 42 },
                          report: { (n: Int) in log.add("report \(n)") })
    }

    @Test func everyStepInItsOrder() throws {
        let log = Log()
        try Self.run(log, options: RunOptions(duration: 1, interval: 0))
        #expect(log.all == ["set up", "start first", "start second", "run", "stop second", "stop first", "close", "report 42"],
                "helpers after set-up and before the lanes, stopped in reverse after them, the plane closed before the report")
    }

    @Test func aFailureStopsWhatStartedAndClosesThePlane() throws {
        let inRun = Log()
        #expect(throws: Failure.self) { try Self.run(inRun, options: RunOptions(duration: 1, interval: 0), failIn: "run") }
        #expect(inRun.all == ["set up", "start first", "start second", "run", "stop second", "stop first", "close"], "no report")
        let inHelper = Log()
        #expect(throws: LanesError.self) { try Self.run(inHelper, options: RunOptions(duration: 1, interval: 0), failIn: "helper") }
        #expect(inHelper.all == ["set up", "start first", "stop first", "close"], "no lane runs after a helper failed to start")
        let inSetUp = Log()
        #expect(throws: Failure.self) { try Self.run(inSetUp, options: RunOptions(duration: 1, interval: 0), failIn: "set up") }
        #expect(inSetUp.all.isEmpty)
    }

    /// Options that cannot apply are refused in one line before anything is set up.
    @Test func refusalsComeBeforeSetUp() throws {
        let log = Log()
        let refused = #expect(throws: LanesError.self) {
            try Self.run(log, options: RunOptions(duration: 1, interval: 0), refusing: ["--busy-poll: no socket here"])
        }
        #expect(refused?.what == "--busy-poll: no socket here")
        let metrics = #expect(throws: LanesError.self) {
            try Self.run(log, options: RunOptions(duration: 1, interval: 0, metrics: MetricsEndpoint(parsing: "127.0.0.1:1")))
        }
        #expect(metrics?.description.hasPrefix("--metrics: a test run serves no metrics") == true)
        #expect(log.all.isEmpty, "nothing set up")
        #expect(throws: LanesError.self) { _ = try RunOptions(duration: 0, interval: 1) }
        #expect(throws: LanesError.self) { _ = try RunOptions(duration: nil, interval: -1) }
    }
}
