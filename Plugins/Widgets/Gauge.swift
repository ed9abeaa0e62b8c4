/// What the app shows for the slider's value: the label's text and the
/// gauge picture. The one place the label's format is written.
enum Gauge {
    /// The picture's size in pixels.
    static let width = 200, height = 40

    /// The label's text for `value`: `value: N`, or `value = N` when built
    /// with `-D WIDGETS_LABEL_V2` (the variant the browser test hot-reloads).
    static func label(_ value: Int) -> String {
        #if WIDGETS_LABEL_V2
        "value = \(value)"
        #else
        "value: \(value)"
        #endif
    }

    /// A PNG of a horizontal bar filled in proportion to where `value` lies
    /// in `min...max`, on a light track with a dark border and a tick every
    /// tenth of the range.
    static func png(value: Int, min: Int, max: Int) -> [UInt8] {
        let span = Swift.max(1, max - min)
        let inner = width - 4
        let filled = (Swift.min(Swift.max(value, min), max) - min) * inner / span
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let colour: (UInt8, UInt8, UInt8)
                if x < 1 || y < 1 || x >= width - 1 || y >= height - 1 {
                    colour = (0x44, 0x44, 0x44) // border
                } else if x >= 2 && x < 2 + filled && y >= 2 && y < height - 2 {
                    colour = (0x1F, 0x77, 0xB4) // bar
                } else if y >= height - 8 && (x - 2) % (inner / 10) == 0 {
                    colour = (0x99, 0x99, 0x99) // tick
                } else {
                    colour = (0xEE, 0xEE, 0xEE) // track
                }
                let at = (y * width + x) * 3
                pixels[at] = colour.0
                pixels[at + 1] = colour.1
                pixels[at + 2] = colour.2
            }
        }
        return PNG.encode(width: width, height: height, rgb: pixels)
    }
}
