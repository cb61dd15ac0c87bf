import ArgumentParser
import Foundation
import Glibc
import LanesCore
import LanesEngine
import LanesLab
import LanesPacket
import LanesXDP

/// `lanes capture`: what the filter matches, taken by the lanes (AF_XDP, one per
/// queue) and written to pcap or pcapng by a writer thread that never holds a lane up.
struct CaptureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Capture what the filter matches through AF_XDP lanes into a pcap (ns timestamps) or pcapng file.",
        discussion: """
        Each lane copies the first --snaplen bytes of a packet into one of its --buffer
        capture slots, stamped once per burst (CLOCK_MONOTONIC, offset to the wall clock
        at the start: monotone within a lane), and hands the slot to the writer thread
        over a lock-free single-producer ring; the writer batches the file writes (4 MiB).
        When the writer falls behind and a lane has no free slot, the packet is dropped
        from the capture and counted (capture_dropped); the lane never waits. The
        writer merges the lanes' records into one time order (each lane's are in order;
        the earliest waits up to 10 ms for the other lanes' earlier ones); a record held
        up past that is written late and counted (late_records). What the filter does not match
        passes to the kernel (ARP, ping and SSH keep working with the default 'udp').
        pcapng (a name ending in .pcapng) records each packet's queue (epb_queue).
        Examples:
          lanes capture -w /tmp/s0.pcap --filter ip --count 100000
          lanes capture eth1 -w trace.pcapng --queues 0-3 --duration 10
        """)
    @OptionGroup var options: EngineOptions<SinkPort>
    @Option(name: [.customShort("w"), .customLong("write")], help: "The file to write (pcapng when it ends in .pcapng).") var write: String
    @Option(help: "Bytes kept of each packet (at most the largest frame the MTU brings).") var snaplen = 65535
    @Option(help: "Stop after N packets in total.") var count: UInt64?
    @Option(help: "Capture slots per lane between it and the writer (power of two).") var buffer = 8192

    struct Report: Encodable {
        var interface: String
        var file: String
        var format: String
        /// Packets the lanes took from the interface: each captured or dropped (with --count, taken past it are neither).
        var rxPackets: UInt64
        var captured: UInt64
        var captureDropped: UInt64
        /// Records that reached the writer after a later one was written (held up past
        /// the merge window): written out of time order, and counted here.
        var lateRecords: UInt64
        var bytesWritten: UInt64
        var durationS: Double
        var pps: Double
        var lanes: [LaneReport]
        var exitReason: ExitReason
        var framesBalanced: Bool
        struct LaneReport: Encodable { var queue: Int; var captured: UInt64; var captureDropped: UInt64 }
    }

    func run() throws {
        guard snaplen >= 14 && snaplen <= 262_144 else { throw LanesError("bad --snaplen \(snaplen)", fix: "give 14-262144 bytes") }
        guard buffer >= 64 && buffer <= 1 << 20 && buffer & (buffer - 1) == 0 else { throw LanesError("bad --buffer \(buffer)", fix: "give a power of two, 64-1048576") }
        if let count, count == 0 { throw LanesError("bad --count 0", fix: "give a positive packet count") }
        var config = try options.prepare()
        // At most the largest frame the interface's MTU brings (two VLAN tags on top);
        // past one UMEM frame, the lanes take it in several (multi-buffer).
        let mtu = Sysfs.mtu(of: config.interface) ?? 1500
        let keep = min(snaplen, max(config.umem.frameSize - config.umem.headroom, mtu + 22))
        let format = PcapFormat.forFileName(write)
        let fd = open(write, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw LanesError.system("open '\(write)' for writing", errno: errno) }
        defer { close(fd) }
        let (rxq, _) = try InterfaceInfo.queueCount(config.interface)
        let queues = config.queues ?? Array(0..<rxq)
        config.queues = queues
        let lanes = queues.map { CaptureLane(queue: UInt32($0), slotCount: buffer, snaplen: keep) }
        let shared = CaptureShared(limit: count)
        let writer = try CaptureWriter(fd: fd, format: format, snaplen: keep, lanes: lanes, clock: shared)
        let json = options.json, file = write
        var failure: LanesError? = nil
        var startError: LanesError? = nil
        try options.run(config, mode: "capture to \(write) (\(format == .pcapng ? "pcapng" : "pcap, ns"), snaplen \(keep))", report: { (summary: RunSummary, apps: [CaptureApp]) in
            writer.finish()
            let perLane = zip(summary.lanes, apps).map { Report.LaneReport(queue: $0.queue, captured: $1.captured, captureDropped: $0.drops["drop_capture"] ?? 0) }
            let dropped = perLane.reduce(0) { $0 + $1.captureDropped } + writer.droppedAfterError
            let r = Report(interface: summary.interface, file: file, format: format == .pcapng ? "pcapng" : "pcap", rxPackets: summary.rxPackets, captured: writer.records,
                           captureDropped: dropped, lateRecords: writer.lateRecords, bytesWritten: writer.bytesWritten, durationS: summary.durationS,
                           pps: Double(writer.records) / max(summary.durationS, 1e-9), lanes: perLane,
                           exitReason: summary.exitReason, framesBalanced: summary.framesBalanced)
            if json { printJSONLine(r) } else {
                print("capture: \(r.captured) packets to \(file) (\(r.bytesWritten) bytes), \(r.captureDropped) dropped (writer behind), in \(format2(r.durationS)) s, stopped by \(r.exitReason)")
                for l in perLane { print("  q\(l.queue): \(l.captured) captured, \(l.captureDropped) dropped") }
                if r.lateRecords > 0 { print("  \(r.lateRecords) records came later than the \(CaptureWriter.mergeWindowNs / 1_000_000) ms merge window and are out of time order in the file") }
            }
            if writer.writeErrno != 0 { failure = LanesError.system("write '\(file)' (\(writer.droppedAfterError) packets not written)", errno: writer.writeErrno) }
        }) { _, i in
            // The writer starts here: after privileges are dropped, with the stop signals blocked.
            if i == 0 { do throws(LanesError) { try writer.start(core: -1) } catch { startError = error } }
            return CaptureApp(lane: lanes[i], shared: shared, snaplen: keep)
        }
        if let e = startError ?? failure { throw e }
    }
}
