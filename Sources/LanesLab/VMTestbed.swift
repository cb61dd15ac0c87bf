import Foundation
import Glibc
import LanesXDP

/// `lanes testbed up --vm`: the testbed's three roles with the device under test
/// a QEMU guest on real NIC drivers. The gen namespace NAME-gen holds two taps:
/// g0 to the guest's virtio-net NIC (multi-queue, RSS with hash reports,
/// iommu_platform so AF_XDP binds zero-copy) and g1 to its igb NIC (QEMU's
/// 82576 on a q35 machine: RSS, SR-IOV). In the guest they are d0 and d1, with
/// the veth testbed's addresses and MACs; g1 stands where sink:s0 stands there.
///
/// The guest is Debian's kernel (unpacked by scripts/setup into `guestRoot`,
/// never installed) with a busybox initramfs that mounts the host's root
/// read-only over 9p under a tmpfs overlay and switches to it: the host's
/// `lanes`, libraries, iproute2 and ethtool run inside. An agent there (a
/// shell script in the shared control directory) names the NICs, sets the
/// addresses and runs the commands `lanes testbed exec dut -- CMD` drops into
/// the control directory, one job per file, writing its output and status back.
/// KVM where a guest really boots under it, else QEMU's TCG (the run says which).
public struct VMTestbed: Sendable {
    /// The guest kernel: Debian's trixie-backports package, pinned (scripts/setup
    /// fetches it, checks its SHA256 and unpacks it here).
    public static let kernelRelease = "7.3.4+deb13-amd64"
    public static let kernelPackageVersion = "7.3.4-1~bpo13+1"
    public static let guestRoot = "/var/cache/lanes/guest/\(kernelPackageVersion)"
    static var modulesDir: String { "\(guestRoot)/usr/lib/modules/\(kernelRelease)" }

    public let name: String
    public init(name: String = Testbed.defaultName) { self.name = name }

    var veth: Testbed { Testbed(name: name) }
    public var gen: String { "\(name)-gen" }
    /// Host side: the state directory; its ctl/ is shared with the guest at /lanes-ctl.
    public var stateDir: String { "/run/lanes/vm-\(name)" }
    public var ctlDir: String { stateDir + "/ctl" }
    /// A directory the host and the guest share: host path, and the guest's path for it.
    public var sharedHostDir: String { ctlDir + "/share" }
    public static let sharedGuestDir = "/lanes-ctl/share"
    var pidFile: String { stateDir + "/qemu.pid" }

    /// A guest NIC and its host end: the tap in the gen namespace, the guest's port, and the host's addresses on the tap.
    struct Link { var tap: String; var guest: Testbed.Port; var host: Testbed.Port }
    var links: [Link] {
        let t = veth
        var g1 = t.s0
        g1.namespace = gen
        g1.interface = "g1"
        return [Link(tap: "g0", guest: t.d0, host: t.g0), Link(tap: "g1", guest: t.d1, host: g1)]
    }

    /// Whether a VM testbed of this name exists (its state directory is there).
    public static func exists(name: String) -> Bool { FileManager.default.fileExists(atPath: "/run/lanes/vm-\(name)") }

    public var qemuPID: pid_t? {
        guard let s = try? String(contentsOfFile: pidFile, encoding: .utf8), let p = pid_t(s.trimmingCharacters(in: .whitespacesAndNewlines)) else { return nil }
        return kill(p, 0) == 0 ? p : nil
    }

    /// The guest's report once its agent is ready: "kernel R" and "NIC DRIVER" lines.
    var ready: String? { try? String(contentsOfFile: ctlDir + "/ready", encoding: .utf8) }

    /// The accelerator to try first, and why.
    static func accelerator() -> (name: String, why: String) {
        guard access("/dev/kvm", R_OK | W_OK) == 0 else { return ("tcg", "no usable /dev/kvm") }
        if Sysfs.exists("/sys/module/kvm_pvm") {
            return ("tcg", "/dev/kvm is a PVM hypervisor (kvm_pvm), which cannot boot a stock kernel")
        }
        return ("kvm", "/dev/kvm")
    }

    public struct UpResult: Sendable {
        public var created: Bool
        public var accelerator: String
        public var why: String
        public var bootSeconds: Double
        public var nics: [String: String]
        public var kernel: String
    }

    /// Starts the guest (harmless when it is up and ready): taps, the control
    /// directory, the initramfs, QEMU, then waits for the agent.
    @discardableResult
    public func up(queues: Int) throws(LanesError) -> UpResult {
        try Testbed.validate(name: name)
        try requireRoot(for: "the VM testbed")
        guard queues >= 1 && queues <= 8 else { throw LanesError("bad queue count \(queues) for the VM testbed", fix: "use 1-8 (igb has 8 queues)") }
        guard let qemu = ["/usr/bin/qemu-system-x86_64", "/usr/local/bin/qemu-system-x86_64"].first(where: { (p: String) in access(p, X_OK) == 0 }) else {
            throw LanesError("qemu-system-x86_64 not found", fix: "run ./scripts/setup (QEMU 10 from bookworm-backports: it has -device igb)")
        }
        guard access(Self.modulesDir + "/vmlinuz", R_OK) == 0, access(Self.modulesDir + "/modules.dep", R_OK) == 0 else {
            throw LanesError("the guest kernel \(Self.kernelRelease) is not in \(Self.guestRoot)", fix: "run ./scripts/setup (it fetches and unpacks Debian's package)")
        }
        guard access("/bin/busybox", X_OK) == 0 else { throw LanesError("/bin/busybox not found", fix: "apt-get install busybox-static (scripts/setup does)") }
        if Testbed(name: name).exists() && !Self.exists(name: name) {
            throw LanesError("a veth testbed named '\(name)' is up", fix: "lanes testbed down --name \(name), or pick another --name")
        }
        if qemuPID != nil, let r = ready {
            return UpResult(created: false, accelerator: (try? String(contentsOfFile: stateDir + "/accelerator", encoding: .utf8)) ?? "?",
                            why: "already up", bootSeconds: 0, nics: Self.nics(r), kernel: Self.kernel(r))
        }
        try down()
        do throws(LanesError) {
            return try start(qemu: qemu, queues: queues)
        } catch {
            try? down()
            throw error
        }
    }

    private func start(qemu: String, queues: Int) throws(LanesError) -> UpResult {
        for d in ["/run/lanes", stateDir, ctlDir, ctlDir + "/jobs", sharedHostDir] {
            guard mkdir(d, 0o755) == 0 || errno == EEXIST else { throw LanesError.system("create \(d)", errno: errno) }
        }
        try write(ctlDir + "/agent", agentScript(), mode: 0o755)
        try buildInitramfs(stateDir + "/initrd.gz")
        // The host side: the gen namespace and its taps.
        try Shell.run(["ip", "netns", "add", gen])
        try Shell.run(["ip", "-n", gen, "link", "set", "lo", "up"])
        for l in links {
            // Multi-queue taps: the host's generator gets a TX queue per lane on either port.
            try Shell.run(["ip", "-n", gen, "tuntap", "add", "dev", l.tap, "mode", "tap", "multi_queue"])
            try Shell.run(["ip", "-n", gen, "link", "set", "dev", l.tap, "address", l.host.mac])
            try Shell.run(["ip", "-n", gen, "addr", "add", "\(l.host.ipv4)/24", "dev", l.tap])
            try Shell.run(["ip", "-n", gen, "-6", "addr", "add", "\(l.host.ipv6)/64", "dev", l.tap, "nodad"])
            try Shell.run(["ip", "-n", gen, "link", "set", l.tap, "up"])
            try Shell.run(["ip", "-n", gen, "neigh", "replace", l.guest.ipv4, "lladdr", l.guest.mac, "dev", l.tap, "nud", "permanent"])
            try Shell.run(["ip", "-n", gen, "-6", "neigh", "replace", l.guest.ipv6, "lladdr", l.guest.mac, "dev", l.tap, "nud", "permanent"])
        }
        var (accel, why) = Self.accelerator()
        let t0 = monotonicSeconds()
        while true {
            try launch(qemu: qemu, queues: queues, accelerator: accel)
            // Under KVM a stock kernel is up in a few seconds; TCG takes longer.
            let deadline = monotonicSeconds() + (accel == "kvm" ? 30 : 180)
            while ready == nil && qemuPID != nil && monotonicSeconds() < deadline { usleep(100_000) }
            if ready != nil { break }
            let console = ((try? String(contentsOfFile: stateDir + "/console.log", encoding: .utf8)) ?? "")
                .split(separator: "\n").suffix(3).joined(separator: " | ")
            if let p = qemuPID { kill(p, SIGKILL); usleep(200_000) }
            if accel == "kvm" {
                (accel, why) = ("tcg", "a guest did not come up under KVM (\(console.isEmpty ? "no console output" : console))")
                continue
            }
            throw LanesError("the guest did not come up under \(accel) (console: \(console.isEmpty ? "empty" : console))",
                             fix: "see \(stateDir)/console.log and \(ctlDir)/agent.log")
        }
        try write(stateDir + "/accelerator", accel, mode: 0o644)
        let r = ready ?? ""
        return UpResult(created: true, accelerator: accel, why: why, bootSeconds: monotonicSeconds() - t0, nics: Self.nics(r), kernel: Self.kernel(r))
    }

    private func launch(qemu: String, queues: Int, accelerator: String) throws(LanesError) {
        unlink(ctlDir + "/ready")
        let mem = 1024 + 64 * queues
        var args = ["ip", "netns", "exec", gen, qemu, "-name", "lanes-\(name)", "-M", "q35", "-m", "\(mem)", "-smp", "\(queues)",
                    "-display", "none", "-no-reboot", "-daemonize", "-pidfile", pidFile,
                    "-serial", "file:\(stateDir)/console.log", "-monitor", "none",
                    "-kernel", Self.modulesDir + "/vmlinuz", "-initrd", stateDir + "/initrd.gz",
                    "-append", "console=ttyS0 panic=-1 quiet lanes.guest=\(Self.guestRoot)",
                    "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on",
                    "-virtfs", "local,path=\(ctlDir),mount_tag=ctl,security_model=none"]
        args += accelerator == "kvm" ? ["-accel", "kvm", "-cpu", "host"] : ["-accel", "tcg,thread=multi", "-cpu", "max"]
        let d0 = links[0], d1 = links[1]
        args += ["-netdev", "tap,id=n0,ifname=\(d0.tap),script=no,downscript=no,queues=\(queues),vhost=off",
                 "-device", "virtio-net-pci,netdev=n0,mac=\(d0.guest.mac),mq=on,rss=on,hash=on,vectors=\(2 * queues + 2),iommu_platform=on,disable-legacy=on,event_idx=off",
                 "-netdev", "tap,id=n1,ifname=\(d1.tap),script=no,downscript=no,queues=\(queues),vhost=off",
                 "-device", "igb,netdev=n1,mac=\(d1.guest.mac)"]
        let r = try Shell.run(args, check: false)
        guard r.status == 0 else {
            throw LanesError("QEMU did not start: " + (r.stderr.split(separator: "\n").first.map(String.init) ?? "exit \(r.status)"),
                             fix: "check the QEMU line in \(stateDir); KVM needs /dev/kvm, TCG nothing")
        }
    }

    /// Stops the guest and removes everything (also after a killed QEMU or a stale pid file).
    public func down() throws(LanesError) {
        try Testbed.validate(name: name)
        try requireRoot(for: "the VM testbed")
        if let p = qemuPID {
            kill(p, SIGTERM)
            let until = monotonicSeconds() + 3
            while kill(p, 0) == 0 && monotonicSeconds() < until { usleep(50_000) }
            if kill(p, 0) == 0 { kill(p, SIGKILL); usleep(100_000) }
        }
        if NetworkNamespace.exists(gen), let r = try? Shell.run(["ip", "netns", "del", gen], check: false), r.status != 0 {
            throw LanesError("could not remove \(gen): \(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        if FileManager.default.fileExists(atPath: stateDir) {
            do { try FileManager.default.removeItem(atPath: stateDir) } catch { throw LanesError("could not remove \(stateDir): \(error)") }
        }
    }

    /// Runs `argv` in the guest (a shell there execs it, with the agent's
    /// environment: PATH of the host's root); returns its status, stdout and
    /// stderr. SIGINT or SIGTERM to the caller while it waits goes on to it.
    /// Frames the host's tap `tap` (g0, g1) dropped on their way into the guest
    /// so far: the guest's ring was full, or QEMU stopped reading that queue.
    public func tapTxDropped(_ tap: String) -> UInt64 {
        let t = (try? Shell.run(["ip", "netns", "exec", gen, "cat", "/sys/class/net/\(tap)/statistics/tx_dropped"], check: false))?.stdout ?? ""
        return UInt64(t.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// Whether an XDP program is attached to the guest's `interface` (asked through exec).
    public func guestHasXDP(_ interface: String) -> Bool {
        ((try? exec(["ip", "link", "show", interface], timeout: 30))?.stdout.contains(" xdp")) ?? false
    }

    public func exec(_ argv: [String], timeout: Double? = nil) throws(LanesError) -> (status: Int32, stdout: String, stderr: String) {
        guard ready != nil, qemuPID != nil else {
            throw LanesError("the VM testbed '\(name)' is not up", fix: "run 'lanes testbed up --vm --name \(name)'")
        }
        let id = "\(getpid())-\(UInt64(monotonicSeconds() * 1e6))"
        let base = ctlDir + "/jobs/" + id
        let script = "echo $$ > \(Self.guestJobs)/\(id).pid\ncd /tmp\nexec " + argv.map(Self.quote).joined(separator: " ") + "\n"
        try write(base + ".tmp", script, mode: 0o644)
        guard rename(base + ".tmp", base + ".cmd") == 0 else { throw LanesError.system("queue the job \(base).cmd", errno: errno) }
        defer { for s in [".run", ".out", ".err", ".rc", ".pid", ".signal", ".cmd"] { unlink(base + s) } }
        let start = monotonicSeconds()
        while access(base + ".rc", F_OK) != 0 {
            let sig = StopSignals.wait(seconds: 0.05)
            if sig != 0 { try? write(base + ".signal", sig == SIGINT ? "INT" : "TERM", mode: 0o644) }
            if qemuPID == nil { throw LanesError("the guest stopped while running '\(argv.joined(separator: " "))'", fix: "see \(stateDir)/console.log") }
            if let timeout, monotonicSeconds() - start > timeout {
                try? write(base + ".signal", "KILL", mode: 0o644)
                throw LanesError("'\(argv.joined(separator: " "))' ran past \(timeout) s in the guest")
            }
        }
        let read = { (s: String) in (try? String(contentsOfFile: base + s, encoding: .utf8)) ?? "" }
        let status = Int32(read(".rc").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 255
        return (status, read(".out"), read(".err"))
    }

    static let guestJobs = "/lanes-ctl/jobs"

    /// One shell word.
    static func quote(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

    public struct Status: Codable, Sendable {
        public struct NIC: Codable, Sendable { public var guest: String; public var driver: String; public var host: String; public var mac: String; public var ipv4: String }
        public var name: String
        public var kind = "vm"
        public var up: Bool
        public var accelerator: String?
        public var guestKernel: String?
        public var qemuPid: Int32?
        public var nics: [NIC]
    }

    public func status() -> Status {
        let r = ready
        let nics = r.map(Self.nics) ?? [:]
        return Status(name: name, up: qemuPID != nil && r != nil,
                      accelerator: try? String(contentsOfFile: stateDir + "/accelerator", encoding: .utf8),
                      guestKernel: r.map(Self.kernel), qemuPid: qemuPID,
                      nics: links.map { .init(guest: $0.guest.interface, driver: nics[$0.guest.interface] ?? "?", host: "\(gen):\($0.tap)", mac: $0.guest.mac, ipv4: $0.guest.ipv4) })
    }

    static func nics(_ ready: String) -> [String: String] {
        var out: [String: String] = [:]
        for line in ready.split(separator: "\n") {
            let w = line.split(separator: " ")
            if w.count == 2, w[0] != "kernel" { out[String(w[0])] = String(w[1]) }
        }
        return out
    }

    static func kernel(_ ready: String) -> String {
        ready.split(separator: "\n").first { $0.hasPrefix("kernel ") }.map { String($0.dropFirst(7)) } ?? "?"
    }

    func write(_ path: String, _ text: String, mode: mode_t) throws(LanesError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw LanesError.system("write \(path)", errno: errno) }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        var off = 0
        while off < bytes.count {
            let w = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + off, $0.count - off) }
            if w < 0 { if errno == EINTR { continue }; throw LanesError.system("write \(path)", errno: errno) }
            off += w
        }
        fchmod(fd, mode)
    }

    /// The initramfs: busybox, the modules the root needs (9p over virtio,
    /// overlay), decompressed, and an init that mounts the host's root and
    /// switches to the agent.
    func buildInitramfs(_ path: String) throws(LanesError) {
        let dir = stateDir + "/initramfs"
        try? FileManager.default.removeItem(atPath: dir)
        for d in [dir, dir + "/bin", dir + "/mod"] {
            guard mkdir(d, 0o755) == 0 else { throw LanesError.system("create \(d)", errno: errno) }
        }
        try Shell.run(["cp", "/bin/busybox", dir + "/bin/busybox"])
        let modules = ["fs/netfs/netfs", "net/9p/9pnet", "net/9p/9pnet_virtio", "fs/9p/9p", "fs/overlayfs/overlay"]
        for m in modules {
            let src = Self.modulesDir + "/kernel/" + m + ".ko.xz"
            let name = String(m.split(separator: "/").last!)
            try Shell.run(["sh", "-c", "xz -dc \(Self.quote(src)) > \(Self.quote(dir + "/mod/" + name + ".ko"))"])
        }
        try write(dir + "/init", Self.initScript(modules: modules.map { String($0.split(separator: "/").last!) }), mode: 0o755)
        try Shell.run(["sh", "-c", "cd \(Self.quote(dir)) && find . | /bin/busybox cpio -H newc -o 2>/dev/null | gzip -1 > \(Self.quote(path))"])
        try? FileManager.default.removeItem(atPath: dir)
    }

    static func initScript(modules: [String]) -> String {
        """
        #!/bin/busybox sh
        # Lanes VM testbed: mount the host's root read-only (9p) under a tmpfs overlay and run the agent on it.
        B=/bin/busybox
        $B mkdir -p /proc /sys /dev /host /rw /newroot
        $B mount -t proc proc /proc
        $B mount -t sysfs sys /sys
        $B mount -t devtmpfs dev /dev
        for m in \(modules.joined(separator: " ")); do $B insmod /mod/$m.ko || echo "lanes-init: insmod $m failed"; done
        $B mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000 hostroot /host || echo "lanes-init: 9p root failed"
        $B mount -t tmpfs -o size=512m tmpfs /rw
        $B mkdir -p /rw/upper /rw/work
        $B mount -t overlay overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work /newroot || echo "lanes-init: overlay failed"
        $B mkdir -p /newroot/lanes-ctl
        $B mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 ctl /newroot/lanes-ctl || echo "lanes-init: ctl failed"
        G=$($B sed -n 's/.*lanes.guest=\\([^ ]*\\).*/\\1/p' /proc/cmdline)
        $B mkdir -p /newroot/usr/lib/modules
        $B mount --bind /newroot$G/usr/lib/modules /newroot/usr/lib/modules || echo "lanes-init: modules bind failed"
        $B umount /proc /sys /dev
        exec $B switch_root /newroot /bin/sh /lanes-ctl/agent

        """
    }

    func agentScript() -> String {
        let d0 = links[0], d1 = links[1]
        func port(_ l: Link) -> String {
            """
            ip addr add \(l.guest.ipv4)/24 dev \(l.guest.interface)
            ip -6 addr add \(l.guest.ipv6)/64 dev \(l.guest.interface) nodad
            ip link set \(l.guest.interface) up
            ip neigh replace \(l.host.ipv4) lladdr \(l.host.mac) dev \(l.guest.interface) nud permanent
            ip -6 neigh replace \(l.host.ipv6) lladdr \(l.host.mac) dev \(l.guest.interface) nud permanent
            """
        }
        return """
        #!/bin/sh
        # Lanes VM testbed: the guest's agent, on the host's root (read-only, tmpfs overlay).
        # It names the NICs by their MACs, sets the testbed's addresses, then runs each
        # job the host drops into /lanes-ctl/jobs (ID.cmd), writing ID.out, ID.err, ID.rc.
        mount -t proc proc /proc
        mount -t sysfs sys /sys
        mount -t devtmpfs dev /dev 2>/dev/null
        mount -t tmpfs tmpfs /run
        mount -t bpf bpf /sys/fs/bpf
        export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
        C=/lanes-ctl
        exec >>$C/agent.log 2>&1
        echo "agent: start at $(cut -d' ' -f1 /proc/uptime) s"
        modprobe virtio_net
        modprobe igb
        ip link set lo up
        for d in /sys/class/net/*; do
          n=${d##*/}
          case $(cat $d/address) in
            \(d0.guest.mac)) [ $n = \(d0.guest.interface) ] || ip link set dev $n name \(d0.guest.interface) ;;
            \(d1.guest.mac)) [ $n = \(d1.guest.interface) ] || ip link set dev $n name \(d1.guest.interface) ;;
          esac
        done
        \(port(d0))
        \(port(d1))
        sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
        # QEMU 10.0.2 under TCG can leave a tap queue unread from boot (its tap
        # dropping every frame sent there, the guest's counters still): a reset of
        # virtio-net's queues (channels down to 1 and back) makes it read them all.
        q=$(ethtool -l \(d0.guest.interface) | awk '/^Combined/ {c=$2} END {print c}')
        [ "${q:-1}" -gt 1 ] && ethtool -L \(d0.guest.interface) combined 1 && ethtool -L \(d0.guest.interface) combined $q
        { echo "kernel $(uname -r)"; for n in \(d0.guest.interface) \(d1.guest.interface); do echo "$n $(basename $(readlink /sys/class/net/$n/device/driver))"; done; } > $C/ready.tmp
        mv $C/ready.tmp $C/ready
        echo "agent: ready at $(cut -d' ' -f1 /proc/uptime) s"
        while :; do
          for j in $C/jobs/*.cmd; do
            [ -e "$j" ] || continue
            id=${j%.cmd}
            mv "$j" "$id.run"
            ( sh "$id.run" > "$id.out" 2> "$id.err" < /dev/null; echo $? > "$id.rc.tmp"; mv "$id.rc.tmp" "$id.rc" ) &
          done
          for s in $C/jobs/*.signal; do
            [ -e "$s" ] || continue
            id=${s%.signal}
            [ -e "$id.pid" ] && kill -$(cat "$s") $(cat "$id.pid") 2>/dev/null
            rm -f "$s"
          done
          sleep 0.05
        done

        """
    }
}
