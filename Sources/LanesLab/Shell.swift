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
        // /usr/bin/env finds the tool on PATH, as a shell would.
        let o = try Subprocess.run("/usr/bin/env", args, timeout: 3600)
        let r = Result(status: o.status, stdout: o.stdout, stderr: o.stderr)
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
