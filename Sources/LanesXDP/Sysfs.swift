import Glibc
import LanesPacket

/// Small reads from /sys and /proc; nil when the file is absent.
public enum Sysfs {
    /// An interface's MAC address (in the current namespace).
    public static func mac(of interface: String) throws(LanesError) -> MACAddress {
        guard let m = read("/sys/class/net/\(interface)/address").flatMap({ MACAddress($0) }) else {
            throw LanesError("cannot read the MAC address of \(interface)", fix: "check 'ip link show \(interface)'")
        }
        return m
    }

    public static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        var s = String(decoding: out, as: UTF8.self)
        while s.last == "\n" || s.last == " " { s.removeLast() }
        return s
    }

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// An interface's MTU (in the current namespace), or nil where sysfs has none.
    public static func mtu(of interface: String) -> Int? { read("/sys/class/net/\(interface)/mtu").flatMap(Int.init) }

    /// The PCI function under an interface (virtio_net's is the virtio device's
    /// parent), e.g. "0000:00:05.0"; nil for a virtual one (veth).
    public static func pciFunction(of interface: String) -> String? {
        guard let real = realpath("/sys/class/net/\(interface)/device", nil) else { return nil }
        defer { free(real) }
        return pciFunction(inPath: String(cString: real))
    }

    /// The last PCI address (DOMAIN:BUS:DEVICE.FUNCTION) in a sysfs device path.
    public static func pciFunction(inPath path: String) -> String? {
        func isPCI(_ p: Substring) -> Bool {
            let f = p.split(separator: ":", omittingEmptySubsequences: false)
            return f.count == 3 && f[0].count == 4 && f[1].count == 2 && f[2].count >= 4 && f[2].contains(".")
                && f.allSatisfy { $0.allSatisfy { $0.isHexDigit || $0 == "." } }
        }
        return path.split(separator: "/").last(where: isPCI).map(String.init)
    }

    public static func list(_ path: String) -> [String] {
        guard let d = opendir(path) else { return [] }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    public static func link(_ path: String) -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink(path, &buf, buf.count - 1)
        guard n > 0 else { return nil }
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static func onlineCPUs() -> Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
}
