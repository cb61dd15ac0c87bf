import ArgumentParser
import Foundation
import Glibc
import LanesCore
import LanesEngine
import LanesLab
import LanesPacket
import LanesReport
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
        // The writer is a helper of the run: it starts after the privileges are dropped,
        // with the stop signals blocked, and finishes after the lanes drained.
        let writerHelper = RunHelper("capture writer", start: { try writer.start(core: -1) }, stop: { writer.finish() })
        try options.run(config, mode: "capture to \(write) (\(format == .pcapng ? "pcapng" : "pcap, ns"), snaplen \(keep))", report: { (summary: RunSummary, apps: [CaptureApp]) in
            let perLane = zip(summary.lanes, apps).map { l, a in
                var x = Report.Lane(queue: l.queue)
                (x.captured, x.captureDropped) = (a.captured, l.drops["drop_capture"] ?? 0)
                return x
            }
            let dropped = perLane.reduce(0) { $0 + ($1.captureDropped ?? 0) } + writer.droppedAfterError
            var r = Report(interface: summary.interface, durationS: summary.durationS, exitReason: summary.exitReason)
            (r.file, r.format) = (file, format == .pcapng ? "pcapng" : "pcap")
            (r.rxPackets, r.captured, r.captureDropped) = (summary.rxPackets, writer.records, dropped)
            (r.lateRecords, r.bytesWritten) = (writer.lateRecords, writer.bytesWritten)
            r.pps = Double(writer.records) / max(summary.durationS, 1e-9)
            r.lanes = perLane
            r.framesBalanced = summary.framesBalanced
            if json { printJSONLine(r) } else {
                print("capture: \(writer.records) packets to \(file) (\(writer.bytesWritten) bytes), \(dropped) dropped (writer behind), in \(format2(r.durationS)) s, stopped by \(r.exitReason)")
                for l in perLane { print("  q\(l.queue ?? 0): \(l.captured ?? 0) captured, \(l.captureDropped ?? 0) dropped") }
                if writer.lateRecords > 0 { print("  \(writer.lateRecords) records came later than the \(CaptureWriter.mergeWindowNs / 1_000_000) ms merge window and are out of time order in the file") }
            }
            if writer.writeErrno != 0 { failure = LanesError.system("write '\(file)' (\(writer.droppedAfterError) packets not written)", errno: writer.writeErrno) }
        }, helpers: [writerHelper]) { _, i in
            CaptureApp(lane: lanes[i], shared: shared, snaplen: keep)
        }
        if let e = failure { throw e }
    }
}
