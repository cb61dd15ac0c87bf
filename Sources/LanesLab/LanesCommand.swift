import LanesCore

/// A `lanes` command for a child process, from typed values, rendered to its
/// arguments here only: the lab's one way to start the engine (a child process
/// per namespace, see Package.swift). Values with a command-line type are that
/// type (`Rate`, core and queue lists), spelled so the CLI's own parsers
/// (`Rate.parse`, `IndexList.parse`) read them back as they were (tested).
public struct LanesCommand: Sendable, Equatable {
    public enum Verb: String, Sendable { case gen, fwd, drop, sink }
    public var verb: Verb
    /// IN [OUT] ports; none with `testbed`.
    public var ports: [String] = []
    public var netns: String? = nil
    public var testbed: String? = nil
    public var queues: [Int]? = nil
    public var cores: [Int]? = nil
    public var mode: String? = nil
    public var filter: String? = nil
    public var flows: Int? = nil
    public var rss = false
    public var rate: Rate? = nil
    public var count: UInt64? = nil
    public var duration: Double? = nil
    /// Seconds between interval reports (0: none).
    public var interval: Double = 0
    public var json = true
    /// What the fields above do not name, as the CLI spells it (`--rx-only`, `--size 64`, ...).
    public var extra: [String] = []

    public init(_ verb: Verb, ports: [String] = [], netns: String? = nil, testbed: String? = nil) {
        self.verb = verb; self.ports = ports; self.netns = netns; self.testbed = testbed
    }

    public var arguments: [String] {
        var a = [verb.rawValue] + ports
        if let testbed { a += ["--testbed", testbed] }
        if let netns { a += ["--netns", netns] }
        if let mode { a += ["--mode", mode] }
        if let queues { a += ["--queues", LanesCommand.list(queues)] }
        if let cores { a += ["--cores", LanesCommand.list(cores)] }
        if let filter { a += ["--filter", filter] }
        if let flows { a += ["--flows", "\(flows)"] }
        if rss { a.append("--rss") }
        if let rate { a += ["--rate", LanesCommand.spell(rate)] }
        if let count { a += ["--count", "\(count)"] }
        if let duration { a += ["--duration", "\(duration)"] }
        a += extra
        a += ["--interval", "\(interval)"]
        if json { a.append("--json") }
        return a
    }

    /// `0,1,2`: what IndexList.parse reads back.
    public static func list(_ values: [Int]) -> String { values.map(String.init).joined(separator: ",") }

    /// `50000pps`, `1000000000bps` (whole units: what the generator can pace).
    public static func spell(_ rate: Rate) -> String {
        switch rate {
        case .pps(let p): "\(Int(p.rounded()))pps"
        case .bps(let b): "\(Int(b.rounded()))bps"
        }
    }
}
