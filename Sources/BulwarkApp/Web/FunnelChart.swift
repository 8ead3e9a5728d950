/// Horizontal bar chart as inline SVG, drawn on the server so it needs no script.
enum FunnelChart {
    struct Bar { let label: String; let value: Int }

    static func svg(_ bars: [Bar], width: Int = 520) -> String {
        let maximum = max(bars.map(\.value).max() ?? 0, 1)
        let rowHeight = 28
        let labelWidth = 110
        var body = ""
        for (index, bar) in bars.enumerated() {
            let y = index * rowHeight
            let length = Int(Double(width - labelWidth - 60) * Double(bar.value) / Double(maximum))
            body += "<text x=\"0\" y=\"\(y + 18)\" font-size=\"13\">\(HTML.escape(bar.label))</text>"
            body += "<rect x=\"\(labelWidth)\" y=\"\(y + 5)\" width=\"\(length)\" height=\"18\" rx=\"3\" fill=\"#1f4fd1\"></rect>"
            body += "<text x=\"\(labelWidth + length + 6)\" y=\"\(y + 18)\" font-size=\"13\">\(bar.value)</text>"
        }
        let height = bars.count * rowHeight
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"Campaign funnel\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\">\(body)</svg>"
    }
}
