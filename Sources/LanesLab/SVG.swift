import Foundation

/// The pieces the experiments' SVG plots share: framed axes with a value grid,
/// polylines with their points, legend entries, a round axis maximum, and
/// escaping. Plain strings, no dependencies: a plot is a file anyone can open.
enum SVG {
    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]

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
