import Foundation
import XCTest

/// The Widgets plugin's PNG encoder (Plugins/Widgets/PNG.swift), compiled
/// here into a small program with a test image large enough for several
/// stored deflate blocks, and decoded twice: by ``DecodedPNG`` (which
/// checks every CRC, the zlib header, each stored block and the Adler-32)
/// and by Python's zlib.
final class WidgetPNGTests: XCTestCase {
    func testEncoderOutputDecodesToThePixelsItWasGivenInSeveralStoredBlocks() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let main = """
            // 300 x 100 RGB: 90100 bytes of rows, so two stored blocks.
            var pixels: [UInt8] = []
            for y in 0..<100 { for x in 0..<300 { pixels += [UInt8(x & 0xFF), UInt8(y), UInt8((x * y) & 0xFF)] } }
            let png = PNG.encode(width: 300, height: 100, rgb: pixels)
            print(png.map { String($0) }.joined(separator: " "))
            """
        try main.write(toFile: "\(dir)/main.swift", atomically: true, encoding: .utf8)
        let result = try TestSupport.run(try TestSupport.swiftc(), ["-swift-version", "6", "-o", "\(dir)/encode",
                                                                    "\(dir)/main.swift", TestSupport.repoRoot + "/Plugins/Widgets/PNG.swift"])
        XCTAssertEqual(result.status, 0, result.output)
        let output = try TestSupport.run("\(dir)/encode", [])
        XCTAssertEqual(output.status, 0)
        let bytes = output.output.split(whereSeparator: \.isWhitespace).compactMap { UInt8($0) }

        let png = try DecodedPNG(bytes)
        XCTAssertEqual([png.width, png.height], [300, 100])
        XCTAssertEqual(png.storedBlocks, 2)
        var expected: [UInt8] = []
        for y in 0..<100 { for x in 0..<300 { expected += [UInt8(x & 0xFF), UInt8(y), UInt8((x * y) & 0xFF)] } }
        XCTAssertEqual(png.pixels, expected)

        let python = try DecodedPNG.checkedByPython(bytes, in: dir)
        XCTAssertEqual(python["width"] as? Int, 300)
        XCTAssertEqual(python["height"] as? Int, 100)
        XCTAssertEqual(python["crcs_ok"] as? Bool, true)
        XCTAssertEqual(python["raw_length"] as? Int, 100 * (1 + 300 * 3))
        XCTAssertEqual(python["raw_adler32"] as? Int, Int(DecodedPNG.adler32(png.raw)))
    }

    func testTheGaugeFromThePluginIsReadByPythonsZlib() throws {
        let dir = try TestSupport.temporaryDirectory(self)
        let manifest = """
        {"version": 1, "plugin_paths": [\(Frame.quoted(TestSupport.buildDirectory))],
         "targets": [{"target_name": "commhost.widgets", "library": "libWidgetsPlugin.so", "handler": "widget"}]}
        """
        try manifest.write(toFile: "\(dir)/manifest.json", atomically: true, encoding: .utf8)
        let host = try ServeHarness(self, arguments: ["serve", "--manifest", "\(dir)/manifest.json", "--dialect", "shinywidgets"])
        let app = try WidgetApp(host)
        let gauge = app.image.buffers[0]
        let python = try DecodedPNG.checkedByPython(gauge, in: dir)
        XCTAssertEqual(python["width"] as? Int, 200)
        XCTAssertEqual(python["height"] as? Int, 40)
        XCTAssertEqual(python["colour_type"] as? Int, 2)
        XCTAssertEqual(python["crcs_ok"] as? Bool, true)
        XCTAssertEqual(python["raw_adler32"] as? Int, Int(DecodedPNG.adler32(try DecodedPNG(gauge).raw)))
        host.finish()
    }
}

/// A PNG as this test reads it: 8-bit RGB, filter type 0, image data in
/// stored deflate blocks (what the plugin's encoder writes); anything else,
/// a wrong CRC, length or checksum fails the decode with what was wrong.
struct DecodedPNG {
    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    var width = 0, height = 0
    /// The decompressed rows, each with its filter byte.
    var raw: [UInt8] = []
    /// The RGB triples, row by row.
    var pixels: [UInt8] = []
    var storedBlocks = 0

    init(_ bytes: [UInt8]) throws {
        guard bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else { throw Problem(description: "no PNG signature") }
        var at = 8, idat: [UInt8] = [], types: [String] = []
        func u32(_ i: Int) -> UInt32 { bytes[i..<(i + 4)].reduce(0) { $0 << 8 | UInt32($1) } }
        while at + 12 <= bytes.count {
            let length = Int(u32(at))
            guard at + 12 + length <= bytes.count else { throw Problem(description: "chunk at \(at) runs past the end") }
            let typed = Array(bytes[(at + 4)..<(at + 8 + length)])
            let type = String(decoding: typed[0..<4], as: UTF8.self)
            guard Self.crc32(typed) == u32(at + 8 + length) else { throw Problem(description: "bad CRC on \(type)") }
            let data = Array(typed[4...])
            types.append(type)
            if type == "IHDR" {
                width = Int(data[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
                height = Int(data[4..<8].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
                guard Array(data[8...]) == [8, 2, 0, 0, 0] else { throw Problem(description: "not 8-bit RGB: \(data[8...])") }
            }
            if type == "IDAT" { idat += data }
            at += 12 + length
        }
        guard at == bytes.count, types.first == "IHDR", types.last == "IEND" else { throw Problem(description: "chunks \(types)") }
        guard idat.count >= 6, (Int(idat[0]) << 8 | Int(idat[1])) % 31 == 0, idat[0] & 0x0F == 8 else {
            throw Problem(description: "not a zlib stream")
        }
        var i = 2, final = false
        while !final {
            final = idat[i] & 1 == 1
            guard idat[i] & 0b110 == 0 else { throw Problem(description: "block \(storedBlocks) is not stored") }
            let len = Int(idat[i + 1]) | Int(idat[i + 2]) << 8, nlen = Int(idat[i + 3]) | Int(idat[i + 4]) << 8
            guard len == ~nlen & 0xFFFF else { throw Problem(description: "LEN/NLEN mismatch") }
            raw += idat[(i + 5)..<(i + 5 + len)]
            i += 5 + len
            storedBlocks += 1
        }
        guard i + 4 == idat.count, Self.adler32(raw) == idat[i..<(i + 4)].reduce(0, { $0 << 8 | UInt32($1) }) else {
            throw Problem(description: "bad Adler-32 or trailing bytes")
        }
        let stride = 1 + width * 3
        guard raw.count == height * stride else { throw Problem(description: "\(raw.count) bytes of rows for \(width)x\(height)") }
        for row in 0..<height {
            guard raw[row * stride] == 0 else { throw Problem(description: "row \(row) has filter \(raw[row * stride])") }
            pixels += raw[(row * stride + 1)..<((row + 1) * stride)]
        }
    }

    /// The gauge's bar: how many pixels of the middle row have the bar's colour.
    var barLength: Int {
        let row = height / 2
        return (0..<width).filter { x in
            let at = (row * width + x) * 3
            return Array(pixels[at..<(at + 3)]) == [0x1F, 0x77, 0xB4]
        }.count
    }

    static func crc32(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? 0xEDB8_8320 ^ (crc >> 1) : crc >> 1 }
        }
        return ~crc
    }

    static func adler32(_ bytes: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in bytes { a = (a + UInt32(byte)) % 65521; b = (b + a) % 65521 }
        return b << 16 | a
    }

    /// What Python's zlib makes of `bytes` (written to a file in `dir`):
    /// the IHDR size and colour type, whether every chunk's zlib.crc32
    /// matches, and the length and Adler-32 of zlib.decompress(IDAT).
    static func checkedByPython(_ bytes: [UInt8], in dir: String) throws -> [String: Any] {
        let path = "\(dir)/check.png"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let script = """
            import json, struct, sys, zlib
            data = open(sys.argv[1], "rb").read()
            assert data[:8] == b"\\x89PNG\\r\\n\\x1a\\n"
            at, idat, ok, info = 8, b"", True, {}
            while at < len(data):
                (length,) = struct.unpack(">I", data[at:at + 4])
                kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + length]
                (crc,) = struct.unpack(">I", data[at + 8 + length:at + 12 + length])
                ok = ok and zlib.crc32(kind + body) == crc
                if kind == b"IHDR":
                    info["width"], info["height"], _, info["colour_type"] = struct.unpack(">IIBB", body[:10])
                if kind == b"IDAT":
                    idat += body
                at += 12 + length
            raw = zlib.decompress(idat)
            info.update(crcs_ok=ok, raw_length=len(raw), raw_adler32=zlib.adler32(raw))
            print(json.dumps(info))
            """
        let result = try TestSupport.run("/usr/bin/python3", ["-c", script, path])
        guard result.status == 0,
              let object = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any] else {
            throw Problem(description: "python3 could not read the PNG: \(result.output)")
        }
        return object
    }
}
