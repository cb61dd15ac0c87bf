import Foundation

/// The SVG of a scaling sweep: Mpps against flows (one line per lane count,
/// log2 flow axis) and Mpps against lanes (single flow versus the most flows).
public enum ScalePlot {
    public static func svg(_ r: ScaleResult) -> String {
        let w = 1000.0, h = 440.0
        let panelW = 400.0, panelH = 300.0
        let left1 = 80.0, left2 = 570.0, top = 70.0
        let ymax = SVG.niceMax(max(r.points.map(\.mppsMax).max() ?? 0.1, r.capGbps.map { $0 * 1e9 / Double(r.frameSize * 8) / 1e6 } ?? 0))
        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(w))" height="\(Int(h))" viewBox="0 0 \(Int(w)) \(Int(h))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(w / 2)" y="24" text-anchor="middle" font-size="16" font-weight="bold">lanes scale: \(SVG.esc(r.mode)), \(r.frameSize)-byte frames, median of \(r.repeats) runs\(r.capGbps.map { ", per-flow cap \(SVG.fmt($0 * 1000)) Mbps" } ?? "")</text>
        <text x="\(w / 2)" y="44" text-anchor="middle" fill="#555">\(SVG.esc(r.machine.cpuModel)), \(r.machine.cores) CPUs, kernel \(SVG.esc(r.machine.kernel)), \(SVG.esc(r.machine.driver)) (\(SVG.esc(r.machine.bindMode)))</text>

        """
        let flows = Array(Set(r.points.map(\.flows))).sorted()
        let lanes = Array(Set(r.points.map(\.lanes))).sorted()
        // Panel 1: Mpps vs flows.
        let fx: (Int) -> Double = { f in
            let lo = log2(Double(flows.first ?? 1)), hi = log2(Double(flows.last ?? 1))
            return left1 + (hi > lo ? (log2(Double(f)) - lo) / (hi - lo) : 0.5) * panelW
        }
        let fy: (Double) -> Double = { v in top + panelH - v / ymax * panelH }
        s += SVG.axes(left: left1, top: top, width: panelW, height: panelH, ymax: ymax,
                  xticks: flows.map { (fx($0), "\($0)") }, xlabel: "flows (log scale)", ylabel: "received Mpps")
        // Lanes solid, the kernel stack dashed.
        var row = 0
        for dut in r.duts {
            let kernel = dut == "kernel"
            for (i, l) in lanes.enumerated() {
                let pts = r.points.filter { $0.lanes == l && $0.dut == dut }.sorted { $0.flows < $1.flows }
                guard !pts.isEmpty else { continue }
                let c = SVG.colors[i % SVG.colors.count]
                s += SVG.polyline(pts.map { (fx($0.flows), fy($0.mppsMedian)) }, color: c, dashed: kernel)
                for p in pts {
                    s += "<line x1=\"\(fx(p.flows))\" y1=\"\(fy(p.mppsMin))\" x2=\"\(fx(p.flows))\" y2=\"\(fy(p.mppsMax))\" stroke=\"\(c)\"/>\n"
                }
                let label = "\(l) lane\(l == 1 ? "" : "s")" + (r.duts.count > 1 || kernel ? (kernel ? ", kernel stack" : ", Lanes") : "")
                s += SVG.legend(x: left1 + 10, y: top + 14 + Double(row) * 16, color: c, text: label, dashed: kernel)
                row += 1
            }
        }
        if let cap = r.capGbps {
            let y = fy(cap * 1e9 / Double(r.frameSize * 8) / 1e6)
            s += "<line x1=\"\(left1)\" y1=\"\(y)\" x2=\"\(left1 + panelW)\" y2=\"\(y)\" stroke=\"#888\" stroke-dasharray=\"6,4\"/>\n"
            s += "<text x=\"\(left1 + panelW - 4)\" y=\"\(y - 4)\" text-anchor=\"end\" fill=\"#555\">per-flow cap</text>\n"
        }
        // Panel 2: Mpps vs lanes, for one flow and for the most flows.
        let lx: (Int) -> Double = { l in
            let lo = Double(lanes.first ?? 1), hi = Double(lanes.last ?? 1)
            return left2 + (hi > lo ? (Double(l) - lo) / (hi - lo) : 0.5) * panelW
        }
        s += SVG.axes(left: left2, top: top, width: panelW, height: panelH, ymax: ymax,
                  xticks: lanes.map { (lx($0), "\($0)") }, xlabel: "lanes (one core each)", ylabel: "received Mpps")
        let series = [flows.first, flows.last].compactMap { $0 }
        row = 0
        for dut in r.duts {
            let kernel = dut == "kernel"
            for (i, f) in Set(series).sorted().enumerated() {
                let pts = r.points.filter { $0.flows == f && $0.dut == dut }.sorted { $0.lanes < $1.lanes }
                guard !pts.isEmpty else { continue }
                let c = i == 0 ? "#444444" : "#2ca02c"
                s += SVG.polyline(pts.map { (lx($0.lanes), fy($0.mppsMedian)) }, color: c, dashed: kernel)
                s += SVG.legend(x: left2 + 10, y: top + 14 + Double(row) * 16, color: c, text: "\(f) flow\(f == 1 ? "" : "s")" + (kernel ? ", kernel stack" : ""), dashed: kernel)
                row += 1
            }
        }
        s += "</svg>\n"
        return s
    }
}
