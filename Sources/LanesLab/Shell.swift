import Foundation
import LanesXDP

/// Runs set-up tools (ip, sysctl) and returns their output; throws a one-line
/// LanesError naming the command and its stderr when one fails.
public enum Shell {
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    @discardableResult
    public static func run(_ args: [String], check: Bool = true) throws(LanesError) -> Result {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch {
            throw LanesError("could not start '\(args.joined(separator: " "))': \(error)")
        }
        // Read both pipes before waiting, so a chatty tool cannot block on a full pipe.
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let r = Result(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self),
                       stderr: String(decoding: e, as: UTF8.self))
        if check && r.status != 0 {
            let msg = r.stderr.split(separator: "\n").first.map(String.init) ?? "exit \(r.status)"
            throw LanesError("'\(args.joined(separator: " "))' failed: \(msg)")
        }
        return r
    }

    public static func has(_ tool: String) -> Bool {
        ["/usr/sbin", "/usr/bin", "/sbin", "/bin"].contains { FileManager.default.isExecutableFile(atPath: "\($0)/\(tool)") }
    }
}
