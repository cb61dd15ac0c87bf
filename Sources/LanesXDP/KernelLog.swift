import Glibc

/// The kernel's log from now on (/dev/kmsg, opened at its end): the records
/// written after `open()`, read without blocking. Opened during set-up, while
/// the process may still read it (CAP_SYSLOG under kernel.dmesg_restrict=1); the
/// descriptor keeps reading after the privileges are dropped.
public final class KernelLog: @unchecked Sendable {
    // @unchecked: one owner thread (the monitor) reads; the descriptor is closed once, in deinit.
    let fd: Int32

    /// nil where the log cannot be read (no /dev/kmsg, or not allowed).
    public init?() {
        fd = Glibc.open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        // SEEK_END on /dev/kmsg: the next read returns the first record after now.
        guard lseek(fd, 0, SEEK_END) >= 0 else { Glibc.close(fd); return nil }
    }

    deinit { Glibc.close(fd) }

    /// The messages logged since the last call (their text, without the
    /// "priority,sequence,time,flags;" prefix and the key=value lines after it).
    public func newMessages() -> [String] {
        var out: [String] = []
        var buf = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                // EPIPE: records were overwritten before we read them; the next read goes on from the oldest left.
                if e == EPIPE { continue }
                break // EAGAIN: nothing new
            }
            if n == 0 { break }
            if let m = KernelLog.message(ofRecord: String(decoding: buf[0..<n], as: UTF8.self)) { out.append(m) }
        }
        return out
    }

    /// A /dev/kmsg record's text: "6,1234,5678901,-;igb 0000:00:05.0: resetting\n
    /// SUBSYSTEM=pci\n DEVICE=+pci:0000:00:05.0\n" gives "igb 0000:00:05.0: resetting".
    public static func message(ofRecord record: String) -> String? {
        let firstLine = record.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return firstLine.firstIndex(of: ";").map { String(firstLine[firstLine.index(after: $0)...]) }
    }
}
