import Foundation
import LanesXDP

/// A `lanes` subcommand run as a child process (each in its own namespace),
/// its output collected in temporary files.
public final class Child {
    let process = Process()
    let out: URL, err: URL

    /// The running binary, for children.
    public static var lanesBinary: String { (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0] }

    public init(_ args: [String]) throws(LanesError) {
        let tmp = FileManager.default.temporaryDirectory
        out = tmp.appendingPathComponent("lanes-child-\(UUID().uuidString).out")
        err = tmp.appendingPathComponent("lanes-child-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: Child.lanesBinary)
        process.arguments = args
        process.standardInput = FileHandle.nullDevice
        do {
            process.standardOutput = try FileHandle(forWritingTo: out)
            process.standardError = try FileHandle(forWritingTo: err)
            try process.run()
        } catch {
            throw LanesError("could not start lanes \(args.first ?? ""): \(error)")
        }
    }

    public func interrupt() { if process.isRunning { kill(process.processIdentifier, SIGINT) } }

    /// Waits (up to `timeout` s, then SIGKILL) and returns status, stdout, stderr.
    /// When `stop` turns true the child gets SIGINT and 5 s more to finish.
    public func wait(timeout: Double = 60, stop: () -> Bool = { false }) -> (status: Int32, stdout: String, stderr: String) {
        var deadline = Date().addingTimeInterval(timeout)
        var interrupted = false
        while process.isRunning && Date() < deadline {
            if !interrupted && stop() {
                interrupted = true
                interrupt()
                deadline = min(deadline, Date().addingTimeInterval(5))
            }
            usleep(5_000)
        }
        if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        defer { try? FileManager.default.removeItem(at: out); try? FileManager.default.removeItem(at: err) }
        return (process.terminationStatus, (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }

    /// Runs to completion.
    public static func run(_ args: [String], timeout: Double = 120, stop: () -> Bool = { false }) throws(LanesError) -> (status: Int32, stdout: String, stderr: String) {
        try Child(args).wait(timeout: timeout, stop: stop)
    }
}

/// Whether an XDP program is attached to `iface` in namespace `ns` (nil: this one), asked with ip.
public func xdpAttached(namespace ns: String?, interface iface: String) -> Bool {
    (try? Shell.run((ns.map { ["ip", "-n", $0] } ?? ["ip"]) + ["link", "show", iface], check: false))?.stdout.contains("prog/xdp") ?? false
}
