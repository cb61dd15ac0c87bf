import Foundation
import LanesXDP
import Testing

/// Root-only tests run where root is; on CI (CI=true) they always run, so a
/// missing privilege fails loudly instead of skipping.
enum Privileged {
    static let onCI = ProcessInfo.processInfo.environment["CI"] == "true"
    static let available = geteuid() == 0 || onCI
    static let reason: Comment = "needs root (run the README's test command as root); on CI this test runs and fails instead"
}

/// Under ThreadSanitizer (scripts/test sets LANES_TSAN=1 for that run) every
/// process is 5-15x slower: tests that send at a rate send at an eighth of it.
func testRate(_ pps: Int) -> Int {
    ProcessInfo.processInfo.environment["LANES_TSAN"] == nil ? pps : max(1000, pps / 8)
}

/// Whether this kernel runs XDP live frames (BPF_PROG_RUN with
/// BPF_F_TEST_XDP_LIVE_FRAMES: `gen --tx xdp`, and what `auto` picks on veth).
/// Some kernels refuse it: the machine of 2026-12-06 (6.18.44-fc, lockdown
/// "integrity") answers EPERM even as root with every capability but
/// CAP_SYS_RESOURCE. There, the live-frames tests check the refusal instead: one
/// line naming the kernel's answer for `--tx xdp`, xsk and the reason under auto.
enum LiveFrames {
    /// nil: the kernel runs them; else its answer (strerror).
    static let refusal: String? = {
        do {
            let r = try LiveFramesProgram(slots: 1, streams: 1).probe()
            return r < 0 ? String(cString: strerror(-r)) : nil
        } catch {
            return "\(error)"
        }
    }()
    static var available: Bool { refusal == nil }
    /// The transmit paths this kernel runs.
    static var txPaths: [String] { available ? ["xdp", "xsk"] : ["xsk"] }
    /// What `gen` picks on the testbed by itself.
    static var autoPath: String { available ? "xdp" : "xsk" }

    /// Where the kernel refuses live frames: `gen --tx xdp` on the testbed is one
    /// line naming the refusal, non-zero, with nothing left attached. Returns true
    /// when it checked that (the caller's live-frames test has nothing else to run).
    static func checkedRefusal(_ tb: TestbedHandle) throws -> Bool {
        guard let why = refusal else { return false }
        let o = try lanes("gen", "--testbed", tb.name, "--tx", "xdp", "--count", "10", "--interval", "0")
        #expect(o.status != 0, "--tx xdp ran on a kernel that refuses live frames")
        #expect(o.stderr.split(separator: "\n").count == 1 && o.stderr.contains("--tx xdp") && o.stderr.contains("live frames")
                && o.stderr.contains(why), "\(o.stderr)")
        #expect(try !tb.xdpAttached(tb.gen, "g0"), "the refused run left a program on g0")
        return true
    }

    /// Runs a test whose premise is a generator that outruns the device (live frames on
    /// veth: an AF_XDP copy-mode sender runs the receiving side's work in its own
    /// syscalls, so it cannot). Where the kernel refuses live frames, what it records
    /// is reported as a known issue naming the refusal, not hidden.
    static func premise(_ body: () throws -> Void) rethrows {
        if let why = refusal {
            withKnownIssue("this kernel refuses XDP live frames (\(why)): the AF_XDP generator cannot outrun the device on veth", isIntermittent: true) {
                try body()
            }
        } else {
            try body()
        }
    }
}

/// The `lanes` binary built next to this test bundle.
let lanesBinary: String = {
    let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var dir = me.deletingLastPathComponent()
    // swift test runs .build/<triple>/debug/LanesPackageTests.xctest
    for _ in 0..<3 {
        let candidate = dir.appendingPathComponent("lanes").path
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        dir = dir.deletingLastPathComponent()
    }
    return URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent(".build/debug/lanes").path
}()

struct Output {
    var status: Int32
    var stdout: String
    var stderr: String
    var lastLine: String { stdout.split(separator: "\n").last.map(String.init) ?? "" }
    /// The last stdout line as a JSON object; when it is not one, the failure says the
    /// exit status and the end of stderr (a command that failed prints no JSON).
    func json() throws -> [String: Any] {
        let obj = try? JSONSerialization.jsonObject(with: Data(lastLine.utf8)) as? [String: Any]
        return try #require(obj, "no JSON object (exit status \(status)): stdout '\(lastLine.suffix(300))', stderr '\(stderr.suffix(800))'")
    }
}

/// A process running in the background, with its output collected (LanesLab's
/// Subprocess: posix_spawn, not Foundation's Process, whose run() crashes now and then).
final class Running {
    let process: Subprocess
    let files = TemporaryOutput(prefix: "lanes-test")

    init(_ args: [String], tool: String = lanesBinary) throws {
        process = try Subprocess(tool, args, stdout: files.out, stderr: files.err)
    }

    /// A test that stops (a failed #require) before its wait leaves neither the
    /// process nor its output files behind.
    deinit {
        if process.isRunning {
            process.signal(SIGKILL)
            process.wait()
        }
        files.remove()
    }

    /// Waits for exit up to `timeout` seconds; kills it after that.
    @discardableResult
    func wait(timeout: Double = 30) -> Output {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { process.signal(SIGKILL) }
        let status = process.wait()
        defer { files.remove() }
        return Output(status: status, stdout: files.read(files.out), stderr: files.read(files.err))
    }

    func signal(_ sig: Int32) { process.signal(sig) }

    /// What it has written so far.
    var stdoutSoFar: String { files.read(files.out) }
    var stderrSoFar: String { files.read(files.err) }
}

/// Runs a command to completion.
@discardableResult
func run(_ args: [String], tool: String = lanesBinary, timeout: Double = 60) throws -> Output {
    try Running(args, tool: tool).wait(timeout: timeout)
}

func lanes(_ args: String..., timeout: Double = 60) throws -> Output { try run(args, timeout: timeout) }

func ip(_ args: String...) throws -> Output { try run(["ip"] + args, tool: "/usr/bin/env", timeout: 30) }

let counter = LockedCounter()
final class LockedCounter: @unchecked Sendable {
    private var n = 0
    private let lock = NSLock()
    func next() -> Int { lock.lock(); defer { lock.unlock() }; n += 1; return n }
}

/// A testbed of our own, with a unique name, always torn down.
struct TestbedHandle {
    let name: String
    var gen: String { "\(name)-gen" }
    var dut: String { "\(name)-dut" }
    var sink: String { "\(name)-sink" }

    /// Whether an XDP program is attached to `iface` in `ns`.
    func xdpAttached(_ ns: String, _ iface: String) throws -> Bool {
        let o = try run(["ip", "-n", ns, "link", "show", iface], tool: "/usr/bin/env")
        return o.stdout.contains("prog/xdp")
    }

    /// The name of the XDP program attached to `iface` in `ns` (nil: none).
    func xdpProgramName(_ ns: String, _ iface: String) throws -> String? {
        let o = try run(["ip", "-n", ns, "link", "show", iface], tool: "/usr/bin/env")
        guard let r = o.stdout.range(of: "prog/xdp id ") else { return nil }
        let words = o.stdout[r.upperBound...].split(separator: " ")
        return words.count >= 3 && words[1] == "name" ? String(words[2]) : nil
    }

    /// Waits until a program is attached (a lanes run finished its set-up).
    func waitForXDP(_ ns: String, _ iface: String, timeout: Double = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try xdpAttached(ns, iface) {
                usleep(300_000) // lanes start and fill their rings
                return
            }
            usleep(50_000)
        }
        Issue.record("no XDP program appeared on \(ns):\(iface) within \(timeout) s")
    }

    /// The veth's own receive drops (ethtool -S rx_queue_N_drops): frames its XDP
    /// program could not redirect (an AF_XDP fill ring empty) or its ring overflowed.
    func vethRxDrops(_ ns: String, _ iface: String) throws -> Int {
        let o = try run(["ip", "netns", "exec", ns, "ethtool", "-S", iface], tool: "/usr/bin/env")
        return o.stdout.split(separator: "\n").reduce(0) { acc, line in
            let p = line.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces) }
            return p.count == 2 && p[0].hasPrefix("rx_queue_") && p[0].hasSuffix("_drops") ? acc + (Int(p[1]) ?? 0) : acc
        }
    }

    func traffic(count: Int, flows: Int = 32, to: String = "198.18.0.2", port: Int = 9000, pps: Int = 20000) throws {
        let o = try lanes("testbed", "traffic", "--name", name, "--count", "\(count)", "--flows", "\(flows)",
                          "--to", to, "--port", "\(port)", "--pps", "\(pps)")
        #expect(o.status == 0, "traffic failed: \(o.stderr)")
    }
}

func withTestbed<T>(queues: Int = 2, mtu: Int = 1500, _ body: (TestbedHandle) throws -> T) throws -> T {
    let tb = TestbedHandle(name: "lt\(getpid() % 100000)x\(counter.next())")
    let up = try lanes("testbed", "up", "--queues", "\(queues)", "--name", tb.name, "--mtu", "\(mtu)")
    try #require(up.status == 0, "testbed up failed: \(up.stderr)")
    defer {
        let down = try? lanes("testbed", "down", "--name", tb.name)
        if down?.status != 0 { Issue.record("testbed down failed: \(down?.stderr ?? "?")") }
    }
    return try body(tb)
}

/// What a lanes command's `--metrics` served, fetched by curl inside `ns`.
struct MetricsScrape {
    let output: Output
    init(_ ns: String, port: Int) throws {
        output = try ip("netns", "exec", ns, "curl", "-sS", "--max-time", "5", "http://127.0.0.1:\(port)/metrics")
    }
    var text: String { output.stdout }
    /// The samples of one family: each sample's line (its labels) and value.
    func samples(_ family: String) -> [(line: String, value: Int)] {
        text.split(separator: "\n").filter { $0.hasPrefix(family + "{") }
            .compactMap { l in l.split(separator: " ").last.flatMap { Int($0) }.map { (String(l), $0) } }
    }
    func sum(_ family: String) -> Int { samples(family).map(\.value).reduce(0, +) }
    /// `promtool check metrics` on the text.
    func promtool() throws -> Output {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("lanes-metrics-\(getpid())-\(UInt32.random(in: 0 ... .max)).txt").path
        defer { try? FileManager.default.removeItem(atPath: file) }
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return try run(["-c", "promtool check metrics < \(file)"], tool: "/bin/sh")
    }
}
