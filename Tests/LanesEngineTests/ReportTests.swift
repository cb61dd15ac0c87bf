import Foundation
import LanesCore
import LanesReport
import LanesXDP
import Testing

/// The one report type: the keys each command has always printed (users and
/// scripts read them), and the lab reading them back typed (scale and rfc2544 read
/// nothing else). The integration tests read the real commands' JSON end to end.
@Suite struct ReportTests {
    static func keys(_ r: some Encodable) throws -> Set<String> {
        let object = try JSONSerialization.jsonObject(with: Report.encoder.encode(r)) as? [String: Any]
        return Set(object?.keys.map { $0 } ?? [])
    }

    /// `lanes drop --json`'s summary, key for key as RunSummary printed it.
    @Test func theEnginesReportKeepsItsKeys() throws {
        var r = Report(interface: "d0", durationS: 2, exitReason: .sigint)
        (r.bindMode, r.xdpMode, r.filter, r.umemPlacement) = ("copy", "native", "udp", "node 0")
        (r.framesPerLane, r.frameSize, r.umemBytesPerLane, r.processRssBytes, r.processBeyondUmemBytes) = (4096, 2048, 8 << 20, 1, 2)
        (r.linkDownEvents, r.cpuS, r.multiBuffer, r.path) = (0, 0.5, false, "xsk")
        (r.rxPackets, r.txPackets, r.rxBytes, r.txBytes, r.rxPps, r.txPps) = (10, 0, 640, 0, 5, 0)
        (r.framesBalanced, r.drops, r.xsk, r.xdp) = (true, ["drop_app": 10], XSKStatistics(), XDPQueueCounters())
        var lane = Report.Lane(queue: 0, core: 1)
        (lane.rxPackets, lane.txPackets, lane.rxBytes, lane.txBytes, lane.drops, lane.txKicks, lane.idlePolls) = (10, 0, 640, 0, ["drop_app": 10], 0, 3)
        (lane.xsk, lane.xdp) = (XSKStatistics(), XDPQueueCounters())
        lane.frames = FrameLedger(total: 4096, free: 2048, fillRing: 2048, rxRing: 0, inHands: 0, txRing: 0, completionRing: 0)
        r.lanes = [lane]
        #expect(try Self.keys(r) == ["interface", "bind_mode", "xdp_mode", "filter", "umem_placement", "frames_per_lane", "frame_size",
                                     "umem_bytes_per_lane", "duration_s", "exit_reason", "process_rss_bytes", "process_beyond_umem_bytes",
                                     "link_down_events", "lanes", "cpu_s", "multi_buffer", "path", "rx_packets", "tx_packets", "rx_bytes",
                                     "tx_bytes", "rx_pps", "tx_pps", "frames_balanced", "drops", "xsk", "xdp"])
        #expect(try Self.keys(lane) == ["queue", "core", "rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "drops", "tx_kicks",
                                        "idle_polls", "xsk", "xdp", "frames"])
        let text = String(decoding: try Report.encoder.encode(r), as: UTF8.self)
        #expect(text.contains(#""drop_app":10"#), "cause names stay as the counters name them: \(text)")
        let back = try #require(Report.last(text))
        #expect(back.lanes == [lane] && back.drops == ["drop_app": 10] && back.processRssBytes == 1 && back.exitReason == .sigint)
    }

    /// Each kind of line the lab meets: a banner, interval lines (the engine's,
    /// the kernel sink's, the XDP sink's), then the report; each read as its type.
    @Test func theLabReadsEachLineAsItsType() throws {
        var report = Report(interface: "d0", durationS: 3, exitReason: .sigint)
        (report.bindMode, report.cpuS, report.rxPackets) = ("copy", 3.5, 3000001)
        var lanes = [Report.Lane(queue: 0), Report.Lane(queue: 1)]
        (lanes[0].rxPackets, lanes[1].rxPackets) = (1500000, 1500001)
        report.lanes = lanes
        (report.xdp, report.xsk) = (XDPQueueCounters(), XSKStatistics())
        (report.xdp!.policed, report.xdp!.passed, report.xsk!.rxDropped) = (12, 3, 4)
        report.drops = ["drop_app": 3000001, "drop_no_route": 2]
        report.ec2Shaping = EC2Shaping.between([:], ["pps_allowance_exceeded": 5])
        let dut = """
        lanes drop on d0: 2 lane(s)
        {"elapsed_s":1.0,"rx_pps":0,"tx_pps":0,"lane_rx_pps":[0,0]}
        {"elapsed_s":2.0,"rx_pps":1500000.5,"drops":7,"lane_rx_pps":[750000,750000.5]}
        \(String(decoding: try Report.encoder.encode(report), as: UTF8.self))
        """
        let intervals = IntervalLine.lines(dut)
        #expect(intervals.map(\.elapsedS) == [1, 2] && intervals[1].rxPps == 1500000.5 && intervals[1].drops == 7, "the report is no interval")
        let s = try #require(Report.last(dut))
        #expect(s.lanes?.map(\.rxPackets) == [1500000, 1500001])
        #expect(s.xdp?.policed == 12 && s.xsk?.rxDropped == 4 && s.bindMode == "copy" && s.cpuS == 3.5 && s.rxPackets == 3000001)
        #expect(s.drops == ["drop_app": 3000001, "drop_no_route": 2], "cause names stay as printed")
        #expect(s.ec2Shaping?.deltas == ["pps_allowance_exceeded": 5])

        let kernel = Report.last("""
        {"elapsed_s":1.0,"rx_pps":99,"rx_packets":99}
        {"interface":"d0","duration_s":1,"exit_reason":"duration","bind_mode":"kernel","packets":99,"udp_rcvbuf_errors":3,\
        "lanes":[{"socket":0,"core":0,"rx_packets":99}]}
        """)
        #expect(kernel?.packets == 99 && kernel?.udpRcvbufErrors == 3 && kernel?.lanes?.first?.rxPackets == 99 && kernel?.rxPackets == nil)

        let gen = Report.last("""
        {"interface":"g0","duration_s":1,"exit_reason":"count reached","tx_packets":5000,"tx_pps":250000.0,"rx_packets":4999,"cpu_s":1.25,\
        "latency":{"count":4999,"min_ns":1000,"p50_ns":2000,"p90_ns":3000,"p99_ns":4000,"p999_ns":5000,"max_ns":18446744073709551615}}
        """)
        #expect(gen?.txPackets == 5000 && gen?.txPps == 250000 && gen?.rxPackets == 4999 && gen?.cpuS == 1.25 && gen?.exitReason == .countReached)
        #expect(gen?.latency?.byName["p50_ns"] == 2000 && gen?.latency?.maxNs == .max)
        #expect(IntervalLine.lines(#"{"elapsed_s":0.5,"pps":10}"#).first?.pps == 10, "the XDP sink's interval line")
        #expect(Report.last("not json") == nil && Report.last(#"{"elapsed_s":1}"#) == nil, "an interval line is not a report")
    }

    /// The latency section as gen prints it, from the histogram.
    @Test func latencyFromTheHistogramKeepsItsKeys() throws {
        var h = LatencyHistogram()
        for ns: UInt64 in [1000, 2000, 3000] { h.record(ns) }
        let l = Report.Latency(h)
        #expect(l.count == 3 && l.minNs == 1000 && l.maxNs == 3000)
        #expect(try Self.keys(l) == ["count", "min_ns", "p50_ns", "p90_ns", "p99_ns", "p999_ns", "max_ns"])
        #expect(Report.sendingSpan([(0, 0), (1_000_000_000, 3_000_000_000), (2_000_000_000, 2_500_000_000)]) == 2)
        #expect(Report.sendingSpan([(5, 5)]) == nil, "under two sends apart: no span")
    }
}
