import Foundation
import Glibc
import LanesEngine
import LanesXDP

/// What the long experiments (`scale`, `rfc2544`) share: the output directory,
/// checked before any work; SIGINT/SIGTERM/SIGHUP latched between measurements; the
/// JSON encoding; and writing their files.
enum Experiment {
    /// Blocks the stop signals (from its creation) and polls them, latching the first.
    final class StopLatch {
        private(set) var signal: Int32 = 0
        init() { StopSignals.block() }
        /// True once SIGINT, SIGTERM or SIGHUP has arrived.
        func poll() -> Bool {
            if signal == 0 { signal = StopSignals.wait(seconds: 0) }
            return signal != 0
        }
        /// "SIGINT", "SIGTERM" or "SIGHUP" once one arrived.
        var name: String? { poll() ? (signal == SIGINT ? "SIGINT" : signal == SIGHUP ? "SIGHUP" : "SIGTERM") : nil }
    }

    static func json<T: Encodable>(_ value: T) throws -> Data {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        enc.keyEncodingStrategy = .convertToSnakeCase
        return try enc.encode(value)
    }

    static func write(_ files: [(String, Data)], to dir: URL) throws(LanesError) {
        for (name, bytes) in files {
            let url = dir.appendingPathComponent(name)
            do { try bytes.write(to: url) } catch {
                throw LanesError("cannot write \(url.path): \((error as NSError).localizedDescription)")
            }
        }
    }

    /// Creates `--out` and checks that files can be written there, before any work.
    static func outputDirectory(_ path: String) throws(LanesError) -> URL {
        let dir = URL(fileURLWithPath: path)
        // mkdir -p, one component at a time, so the error names the errno and the place.
        var prefix = dir.path.hasPrefix("/") ? "" : "."
        for part in dir.path.split(separator: "/") {
            prefix += "/" + part
            var st = stat()
            if stat(prefix, &st) == 0 {
                guard st.st_mode & S_IFMT == S_IFDIR else {
                    throw LanesError.system("cannot create --out directory '\(path)': \(prefix) is a file", errno: ENOTDIR, fix: "give a directory you can write")
                }
                continue
            }
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw LanesError.system("cannot create --out directory '\(prefix)'", errno: errno, fix: "give a directory you can write")
            }
        }
        guard access(dir.path, W_OK) == 0 else {
            throw LanesError.system("--out directory '\(path)' is not writable", errno: errno, fix: "give a directory you can write")
        }
        return dir
    }
}
