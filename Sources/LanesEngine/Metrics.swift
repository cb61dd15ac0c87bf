import Glibc
import LanesCore
import LanesXDP

/// Where `--metrics` serves: `PORT` (127.0.0.1), `:PORT` (every address, IPv6
/// and IPv4), `HOST:PORT` (an IPv4 address or a name, resolved once) or
/// `[IPV6]:PORT`. Parsed before any work; bound after privileges are dropped.
public struct MetricsEndpoint: Sendable {
    public let spec: String
    /// The address bound, numeric.
    public let host: String
    public let port: UInt16
    let family: Int32
    let wildcard: Bool
    let address: [UInt8] // a sockaddr_in or sockaddr_in6

    /// The URL a scraper uses (a wildcard is shown as given: every address).
    public var url: String { family == AF_INET6 ? "http://[\(host)]:\(port)/metrics" : "http://\(host):\(port)/metrics" }

    public init(parsing spec: String) throws(LanesError) {
        let fix = "give PORT, :PORT, HOST:PORT or [IPV6]:PORT, e.g. 127.0.0.1:9100"
        var hostText: String?
        let portText: Substring
        if spec.hasPrefix("[") {
            guard let close = spec.firstIndex(of: "]"), spec[close...].hasPrefix("]:") else { throw LanesError("bad --metrics '\(spec)'", fix: fix) }
            hostText = String(spec[spec.index(after: spec.startIndex)..<close])
            portText = spec[spec.index(close, offsetBy: 2)...]
        } else if let i = spec.lastIndex(of: ":") {
            guard !spec[..<i].contains(":") else { throw LanesError("bad --metrics '\(spec)': an IPv6 address needs brackets", fix: "write [ADDR]:PORT") }
            hostText = i == spec.startIndex ? nil : String(spec[..<i])
            portText = spec[spec.index(after: i)...]
        } else {
            hostText = "127.0.0.1"
            portText = spec[...]
        }
        guard let p = UInt16(portText), p > 0 else { throw LanesError("bad --metrics '\(spec)': port '\(portText)'", fix: fix) }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV | (hostText == nil ? AI_PASSIVE : 0)
        hints.ai_family = hostText == nil ? AF_INET6 : (spec.hasPrefix("[") ? AF_INET6 : AF_INET)
        var res: UnsafeMutablePointer<addrinfo>?
        let r = getaddrinfo(hostText, String(p), &hints, &res)
        guard r == 0, let ai = res else {
            throw LanesError("bad --metrics '\(spec)': cannot resolve '\(hostText ?? "")': \(String(cString: gai_strerror(r)))", fix: fix)
        }
        defer { freeaddrinfo(res) }
        address = Array(UnsafeRawBufferPointer(start: ai.pointee.ai_addr, count: Int(ai.pointee.ai_addrlen)))
        family = ai.pointee.ai_family
        var name = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        _ = getnameinfo(ai.pointee.ai_addr, ai.pointee.ai_addrlen, &name, socklen_t(name.count), nil, 0, NI_NUMERICHOST)
        host = String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        port = p
        wildcard = hostText == nil
        self.spec = spec
    }
}

/// A minimal HTTP endpoint serving Prometheus text format from its own thread.
/// Each scrape renders a fresh text: counters are read with relaxed loads from
/// the lanes' stats blocks, so scraping never slows a lane. Start it after the
/// privileges are dropped and the stop signals blocked: the thread that parses
/// requests from the network then holds no more than the lanes do, and never
/// takes a SIGINT meant for the main thread.
public final class MetricsServer {
    let fd: Int32
    public let endpoint: MetricsEndpoint
    var thread: PinnedThread?
    let stop = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)

    public init(_ endpoint: MetricsEndpoint, render: @escaping () -> String) throws(LanesError) {
        let s = try syscall("socket for --metrics") { socket(endpoint.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0) }
        var one: Int32 = 1, zero: Int32 = 0
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, 4)
        // `:PORT` serves IPv4 too, through the IPv6 wildcard.
        if endpoint.family == AF_INET6 && endpoint.wildcard { setsockopt(s, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &zero, 4) }
        let bound = endpoint.address.withUnsafeBytes { raw in
            bind(s, raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), socklen_t(raw.count))
        }
        if bound < 0 {
            let e = errno
            close(s)
            throw LanesError.system("bind --metrics \(endpoint.spec) (\(endpoint.url))", errno: e, fix: e == EADDRINUSE ? "pick another port" : nil)
        }
        try syscall("listen on --metrics") { listen(s, 16) }
        fd = s
        self.endpoint = endpoint
        stop.initialize(to: 0)
        let stopFlag = stop
        thread = try PinnedThread(core: -1, name: "metrics") {
            while stopFlag.loadRelaxed() == 0 {
                var pfd = pollfd(fd: s, events: Int16(POLLIN), revents: 0)
                if poll(&pfd, 1, 100) <= 0 { continue }
                let c = accept(s, nil, nil)
                if c < 0 { continue }
                var tv = timeval(tv_sec: 1, tv_usec: 0)
                setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
                var req = [UInt8](repeating: 0, count: 2048)
                let n = req.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
                let line = n > 0 ? String(decoding: req[0..<n], as: UTF8.self).split(separator: "\r\n").first.map(String.init) ?? "" : ""
                let ok = line.hasPrefix("GET /metrics") || line.hasPrefix("GET / ")
                let body = ok ? render() : "not found; scrape /metrics\n"
                let head = "HTTP/1.1 \(ok ? "200 OK" : "404 Not Found")\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n"
                let bytes = Array((head + body).utf8)
                var sent = 0
                while sent < bytes.count {
                    let r = bytes[sent...].withUnsafeBytes { send(c, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    if r <= 0 { break }
                    sent += r
                }
                close(c)
            }
        }
    }

    /// Stops serving (once; later calls do nothing). After it returns the render
    /// closure runs no more: what it reads may be freed.
    public func shutdown() {
        guard let t = thread else { return }
        stop.storeRelaxed(1) // relaxed: it only ends the loop; the join orders the rest
        t.join()
        thread = nil
        close(fd)
    }

    deinit { if thread != nil { shutdown() }; stop.deallocate() }
}

/// Prometheus text for an engine's lanes: packets, bytes, drops by cause,
/// XDP_STATISTICS, the XDP program's counters, frames in the fill ring and free.
public enum PrometheusText {
    public static func render(engine: Engine, extra: String = "") -> String {
        let labels = engine.laneLabels.map { "queue=\"\($0.0)\",core=\"\($0.1)\",interface=\"\(engine.config.interface)\"" }
        let socks = engine.lanes
        return laneFamilies(labels, engine.snapshot())
            + xskFamilies(socks.map { ("queue=\"\($0.queue)\"", $0.socket.statistics()) })
            + xdpFamilies(socks.map { ("queue=\"\($0.queue)\"", engine.program.counters(queue: UInt32($0.queue))) }) + extra
    }

    /// `fwd --pipeline`: the same series, a lane each for the RX lane (IN's queue)
    /// and every worker (its OUT queue), and the program's counters of the RX queue.
    public static func render(pipeline: Pipeline) -> String {
        let lanes = pipeline.metricLanes
        let labels = lanes.map { "queue=\"\($0.queue)\",core=\"\($0.core)\",interface=\"\($0.interface)\"" }
        return laneFamilies(labels, pipeline.snapshot())
            + xskFamilies(lanes.map { ("queue=\"\($0.queue)\",interface=\"\($0.interface)\"", $0.xsk) })
            + xdpFamilies([("queue=\"\(lanes[0].queue)\"", pipeline.programCounters)])
    }

    /// Packets, bytes, drops by cause and frames, per lane (`labels[i]` is lane i's).
    static func laneFamilies(_ labels: [String], _ snaps: [LaneSnapshot]) -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ samples: [(String, UInt64)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (labels, v) in samples { out += "\(name){\(labels)} \(v)\n" }
        }
        func per(_ c: LaneCounter) -> [(String, UInt64)] { zip(labels, snaps).map { ($0, $1[c]) } }
        family("lanes_rx_packets_total", "counter", "Packets received by the lane.", per(.rxPackets))
        family("lanes_tx_packets_total", "counter", "Packets transmitted by the lane.", per(.txPackets))
        family("lanes_rx_bytes_total", "counter", "Bytes received by the lane.", per(.rxBytes))
        family("lanes_tx_bytes_total", "counter", "Bytes transmitted by the lane.", per(.txBytes))
        var drops: [(String, UInt64)] = []
        for c in LaneCounter.allCases where c.isDrop {
            for (l, s) in zip(labels, snaps) { drops.append(("\(l),cause=\"\(c.name.dropFirst(5))\"", s[c])) }
        }
        family("lanes_drops_total", "counter", "Packets dropped by the lane, by cause.", drops)
        family("lanes_free_frames", "gauge", "Frames free in the lane's pool at its last report.", per(.freeFrames))
        family("lanes_fill_ring_frames", "gauge", "Frames in the fill ring at the lane's last report.", per(.fillFrames))
        return out
    }

    /// Each socket's XDP_STATISTICS (`socks`: its labels and statistics).
    static func xskFamilies(_ socks: [(String, XSKStatistics)]) -> String {
        var out = ""
        func xsk(_ name: String, _ help: String, _ f: (XSKStatistics) -> UInt64) {
            out += "# HELP lanes_xsk_\(name)_total \(help)\n# TYPE lanes_xsk_\(name)_total counter\n"
            for (labels, st) in socks { out += "lanes_xsk_\(name)_total{\(labels)} \(f(st))\n" }
        }
        xsk("rx_dropped", "XDP_STATISTICS rx_dropped.", \.rxDropped)
        xsk("rx_invalid_descs", "XDP_STATISTICS rx_invalid_descs.", \.rxInvalidDescs)
        xsk("tx_invalid_descs", "XDP_STATISTICS tx_invalid_descs.", \.txInvalidDescs)
        xsk("rx_ring_full", "XDP_STATISTICS rx_ring_full.", \.rxRingFull)
        xsk("rx_fill_ring_empty_descs", "XDP_STATISTICS rx_fill_ring_empty_descs.", \.rxFillRingEmptyDescs)
        xsk("tx_ring_empty_descs", "XDP_STATISTICS tx_ring_empty_descs.", \.txRingEmptyDescs)
        return out
    }

    /// `fwd --path xdp`: the same series from the program's per-queue counters (a
    /// lane is an RX queue and direction: rx what the filter took, tx what left,
    /// drops by cause), and the program's own.
    public static func render(forwarder: XDPForwarder) -> String {
        var out = ""
        let rows = forwarder.counters().map { r in
            ("queue=\"\(r.queue)\",core=\"-1\",interface=\"\(r.direction.map { String($0.split(separator: "-").first ?? "") } ?? forwarder.config.interface)\"", r)
        }
        func family(_ name: String, _ help: String, _ samples: [(String, UInt64)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) counter\n"
            for (labels, v) in samples { out += "\(name){\(labels)} \(v)\n" }
        }
        family("lanes_rx_packets_total", "Packets the XDP program took for forwarding (the filter's).", rows.map { ($0.0, $0.1.counters.matched) })
        family("lanes_tx_packets_total", "Packets the XDP program forwarded.", rows.map { ($0.0, $0.1.counters.forwarded) })
        family("lanes_rx_bytes_total", "Bytes the XDP program took for forwarding.", rows.map { ($0.0, $0.1.counters.matchedBytes) })
        family("lanes_tx_bytes_total", "Bytes the XDP program forwarded.", rows.map { ($0.0, $0.1.counters.forwardedBytes) })
        var drops: [(String, UInt64)] = []
        for (labels, r) in rows {
            let mode = r.direction.map { $0.hasPrefix(forwarder.config.interface + "->") } ?? true ? forwarder.config.forward : (forwarder.config.reverse ?? forwarder.config.forward)
            for (cause, v) in XDPForwarder.laneSummary(queue: r.queue, direction: r.direction, r.counters, mode).drops.sorted(by: { $0.key < $1.key }) {
                drops.append(("\(labels),cause=\"\(cause.dropFirst(5))\"", v))
            }
        }
        family("lanes_drops_total", "Packets dropped by the XDP forwarder, by cause.", drops)
        out += xdpFamilies(rows.map { ("queue=\"\($0.1.queue)\"" + ($0.1.direction.map { ",direction=\"\($0)\"" } ?? ""), $0.1.counters) })
        return out
    }

    /// The XDP program's own per-queue counters.
    static func xdpFamilies(_ rows: [(String, XDPQueueCounters)]) -> String {
        var out = ""
        func family(_ name: String, _ help: String, _ f: (XDPQueueCounters) -> UInt64) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) counter\n"
            for (labels, c) in rows { out += "\(name){\(labels)} \(f(c))\n" }
        }
        family("lanes_xdp_redirected_total", "Packets the XDP program redirected to the queue's socket.", \.redirected)
        family("lanes_xdp_passed_total", "Packets the XDP program passed to the kernel.", \.passed)
        family("lanes_xdp_policed_total", "Packets over the per-flow cap, dropped in XDP.", \.policed)
        family("lanes_xdp_forwarded_total", "Packets the XDP program forwarded itself (fwd --path xdp).", \.forwarded)
        return out
    }

    /// A latency histogram as a Prometheus histogram in seconds (cumulative buckets
    /// at powers of two from 1 us to about 17 s). Read while the lane writes: a
    /// scrape may be a few packets behind.
    public static func histogram(_ name: String, _ help: String, _ hists: [LatencyHistogram]) -> String {
        var counts = [UInt64](repeating: 0, count: LatencyHistogram.bucketCount)
        for h in hists {
            for i in 0..<LatencyHistogram.bucketCount { counts[i] &+= h.bucket(i) }
        }
        // From the shared buckets alone (the lane's own copy holds count and sum).
        let total = counts.reduce(0, &+)
        let sum = counts.indices.reduce(0.0) { $0 + Double(counts[$1]) * Double(LatencyHistogram.lowerBound($1)) }
        var out = "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
        var cum: UInt64 = 0, i = 0
        for e in 10...34 { // 1.024 us ... 17.2 s
            let bound = UInt64(1) << UInt64(e)
            while i < LatencyHistogram.bucketCount && LatencyHistogram.lowerBound(i) < bound { cum &+= counts[i]; i += 1 }
            out += "\(name)_bucket{le=\"\(Double(bound) / 1e9)\"} \(cum)\n"
        }
        out += "\(name)_bucket{le=\"+Inf\"} \(total)\n\(name)_sum \(sum / 1e9)\n\(name)_count \(total)\n"
        return out
    }
}
