import Glibc

/// Who holds an XDP program: the live processes with a file descriptor on it.
/// A Lanes command keeps its program's fd open for the whole run, so a Lanes
/// program on an interface with no holder was left by a process that is gone
/// (SIGKILL, a crash); one with a holder belongs to a running command. Asking the
/// kernel (/proc/PID/fdinfo shows `prog_id` for every BPF program fd) needs no
/// record of our own that could go stale, and a reused pid cannot fool it.
public struct ProgramOwner: Sendable, Equatable {
    public var pid: Int32
    /// The process's command line, for the message.
    public var command: String

    /// The live processes other than this one holding program `id`.
    public static func holders(ofProgram id: UInt32) -> [ProgramOwner] {
        let me = getpid()
        var out: [ProgramOwner] = []
        for entry in Sysfs.list("/proc") {
            guard let pid = Int32(entry), pid != me else { continue }
            let fds = Sysfs.list("/proc/\(pid)/fd")
            var holds = false
            for fd in fds {
                guard Sysfs.link("/proc/\(pid)/fd/\(fd)") == "anon_inode:bpf-prog",
                      let info = Sysfs.read("/proc/\(pid)/fdinfo/\(fd)") else { continue }
                for line in info.split(separator: "\n") where line.hasPrefix("prog_id:") {
                    if UInt32(line.dropFirst("prog_id:".count).trimmingCharacters(in: " \t")) == id { holds = true }
                }
                if holds { break }
            }
            if holds {
                let raw = Sysfs.read("/proc/\(pid)/cmdline") ?? ""
                let words = raw.split(separator: "\0").map(String.init)
                let shown = words.first.map { w in ([String(w.split(separator: "/").last ?? "")] + words.dropFirst()).joined(separator: " ") } ?? "?"
                out.append(ProgramOwner(pid: pid, command: shown))
            }
        }
        return out
    }
}

extension Substring {
    func trimmingCharacters(in set: String) -> Substring {
        var s = self
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return s
    }
}
