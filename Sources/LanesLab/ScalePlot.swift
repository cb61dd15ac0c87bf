import Foundation

/// The SVG of a scaling sweep: Mpps against flows (one line per lane count,
/// log2 flow axis) and Mpps against lanes (single flow versus the most flows).
public enum ScalePlot {
    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

    public static func svg(_ r: ScaleResult) -> String {
        let w = 1000.0, h = 440.0
        let panelW = 400.0, panelH = 300.0
        let left1 = 80.0, left2 = 570.0, top = 70.0
        let ymax = niceMax(max(r.points.map(\.mppsMax).max() ?? 0.1, r.capGbps.map { $0 * 1e9 / Double(r.frameSize * 8) / 1e6 } ?? 0))
        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(w))" height="\(Int(h))" viewBox="0 0 \(Int(w)) \(Int(h))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="\(w / 2)" y="24" text-anchor="middle" font-size="16" font-weight="bold">lanes scale: \(esc(r.mode)), \(r.frameSize)-byte frames, median of \(r.repeats) runs\(r.capGbps.map { ", per-flow cap \(fmt($0 * 1000)) Mbps" } ?? "")</text>
        <text x="\(w / 2)" y="44" text-anchor="middle" fill="#555">\(esc(r.machine.cpuModel)), \(r.machine.cores) CPUs, kernel \(esc(r.machine.kernel)), \(esc(r.machine.driver)) (\(esc(r.machine.bindMode)))</text>

        """
        let flows = Array(Set(r.points.map(\.flows))).sorted()
        let lanes = Array(Set(r.points.map(\.lanes))).sorted()
        // Panel 1: Mpps vs flows.
        let fx: (Int) -> Double = { f in
            let lo = log2(Double(flows.first ?? 1)), hi = log2(Double(flows.last ?? 1))
            return left1 + (hi > lo ? (log2(Double(f)) - lo) / (hi - lo) : 0.5) * panelW
        }
        let fy: (Double) -> Double = { v in top + panelH - v / ymax * panelH }
        s += axes(left: left1, top: top, width: panelW, height: panelH, ymax: ymax,
                  xticks: flows.map { (fx($0), "\($0)") }, xlabel: "flows (log scale)", ylabel: "received Mpps")
        // Lanes solid, the kernel stack dashed.
        var row = 0
        for dut in r.duts {
            let kernel = dut == "kernel"
            for (i, l) in lanes.enumerated() {
                let pts = r.points.filter { $0.lanes == l && $0.dut == dut }.sorted { $0.flows < $1.flows }
                guard !pts.isEmpty else { continue }
                let c = colors[i % colors.count]
                s += polyline(pts.map { (fx($0.flows), fy($0.mppsMedian)) }, color: c, dashed: kernel)
                for p in pts {
                    s += "<line x1=\"\(fx(p.flows))\" y1=\"\(fy(p.mppsMin))\" x2=\"\(fx(p.flows))\" y2=\"\(fy(p.mppsMax))\" stroke=\"\(c)\"/>\n"
                }
                let label = "\(l) lane\(l == 1 ? "" : "s")" + (r.duts.count > 1 || kernel ? (kernel ? ", kernel stack" : ", Lanes") : "")
                s += legend(x: left1 + 10, y: top + 14 + Double(row) * 16, color: c, text: label, dashed: kernel)
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
        s += axes(left: left2, top: top, width: panelW, height: panelH, ymax: ymax,
                  xticks: lanes.map { (lx($0), "\($0)") }, xlabel: "lanes (one core each)", ylabel: "received Mpps")
        let series = [flows.first, flows.last].compactMap { $0 }
        row = 0
        for dut in r.duts {
            let kernel = dut == "kernel"
            for (i, f) in Set(series).sorted().enumerated() {
                let pts = r.points.filter { $0.flows == f && $0.dut == dut }.sorted { $0.lanes < $1.lanes }
                guard !pts.isEmpty else { continue }
                let c = i == 0 ? "#444444" : "#2ca02c"
                s += polyline(pts.map { (lx($0.lanes), fy($0.mppsMedian)) }, color: c, dashed: kernel)
                s += legend(x: left2 + 10, y: top + 14 + Double(row) * 16, color: c, text: "\(f) flow\(f == 1 ? "" : "s")" + (kernel ? ", kernel stack" : ""), dashed: kernel)
                row += 1
            }
        }
        s += "</svg>\n"
        return s
    }

    static func axes(left: Double, top: Double, width: Double, height: Double, ymax: Double,
                     xticks: [(Double, String)], xlabel: String, ylabel: String) -> String {
        var s = "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(width)\" height=\"\(height)\" fill=\"none\" stroke=\"#000\"/>\n"
        for i in 0...5 {
            let v = ymax * Double(i) / 5, y = top + height - height * Double(i) / 5
            s += "<line x1=\"\(left - 4)\" y1=\"\(y)\" x2=\"\(left + width)\" y2=\"\(y)\" stroke=\"#ddd\"/>\n"
            s += "<text x=\"\(left - 8)\" y=\"\(y + 4)\" text-anchor=\"end\">\(fmt(v))</text>\n"
        }
        for (x, label) in xticks {
            s += "<line x1=\"\(x)\" y1=\"\(top + height)\" x2=\"\(x)\" y2=\"\(top + height + 5)\" stroke=\"#000\"/>\n"
            s += "<text x=\"\(x)\" y=\"\(top + height + 19)\" text-anchor=\"middle\">\(esc(label))</text>\n"
        }
        s += "<text x=\"\(left + width / 2)\" y=\"\(top + height + 40)\" text-anchor=\"middle\">\(esc(xlabel))</text>\n"
        s += "<text x=\"\(left - 55)\" y=\"\(top + height / 2)\" text-anchor=\"middle\" transform=\"rotate(-90 \(left - 55) \(top + height / 2))\">\(esc(ylabel))</text>\n"
        return s
    }

    static func polyline(_ pts: [(Double, Double)], color: String, dashed: Bool = false) -> String {
        var s = "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"\(dashed ? " stroke-dasharray=\"7,4\"" : "") points=\"\(pts.map { "\($0.0),\($0.1)" }.joined(separator: " "))\"/>\n"
        for (x, y) in pts { s += "<circle cx=\"\(x)\" cy=\"\(y)\" r=\"3.5\" fill=\"\(color)\"/>\n" }
        return s
    }

    static func legend(x: Double, y: Double, color: String, text: String, dashed: Bool = false) -> String {
        "<line x1=\"\(x)\" y1=\"\(y - 4)\" x2=\"\(x + 20)\" y2=\"\(y - 4)\" stroke=\"\(color)\" stroke-width=\"2\"\(dashed ? " stroke-dasharray=\"7,4\"" : "")/><text x=\"\(x + 26)\" y=\"\(y)\">\(esc(text))</text>\n"
    }

    static func niceMax(_ v: Double) -> Double {
        guard v > 0 else { return 1 }
        let e = pow(10, floor(log10(v)))
        for m in [1.0, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10] where m * e >= v * 1.05 { return m * e }
        return 10 * e
    }

    static func fmt(_ v: Double) -> String { v >= 10 ? String(format: "%.0f", v) : v >= 1 ? String(format: "%.1f", v) : String(format: "%.2f", v) }

    static func esc(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
