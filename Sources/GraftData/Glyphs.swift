import CFreeType
import Foundation
import GraftCore

/// Few-shot classes rendered from real fonts, as a stand-in for Omniglot (handwritten characters of 50 alphabets, not
/// available here): each script with a Noto font (`NotoSans<Script>-Regular.ttf`, Debian's `fonts-noto-core`) is an
/// alphabet, each of its first characters a class, and each sample that glyph under a random affine transform and
/// stroke-width jitter, `side`×`side` grey with ink 1 on 0. These are rendered glyphs, not handwriting: strokes vary
/// only as far as the transform and the jitter make them. Everything is determined by the fonts and `seed`.
public struct GlyphSet: Sendable {
    public struct Script: Sendable {
        public let name: String
        public let font: String
        public let characters: [Unicode.Scalar]
    }

    public static let defaultFontDirectory = "/usr/share/fonts/truetype/noto"
    /// Fonts of symbols, numerals or a variant of another script's font, not alphabets.
    static let notScripts: Set<String> = ["", "Math", "Music", "Symbols", "Symbols2", "Mono", "MayanNumerals",
                                          "IndicSiyaqNumbers", "AdlamUnjoined", "Display"]

    public let scripts: [Script]
    /// Class c is character `classes[c].character` of script `classes[c].script`.
    public let classes: [(script: Int, character: Unicode.Scalar)]
    public let side: Int
    public let seed: UInt64
    /// Each class's glyph as rendered once, centred, coverage in 0…1, rows of `masterSide` pixels, and the larger
    /// side of its ink in pixels.
    private let masters: [[Float]]
    private let extents: [Int]
    private let masterSide: Int

    /// Every script in `fontDirectory` with at least `charactersPerScript` usable characters (beyond Latin-1 and
    /// the general symbol blocks, not marks, with a glyph of reasonable size, none a copy of another), taking the
    /// first ones in code-point order.
    public init(fontDirectory: String = defaultFontDirectory, charactersPerScript: Int = 20, side: Int = 28,
                seed: UInt64 = 0) throws {
        require(charactersPerScript > 0 && side >= 8, "GlyphSet: \(charactersPerScript) characters, side \(side)")
        let files: [String]
        do { files = try FileManager.default.contentsOfDirectory(atPath: fontDirectory).sorted() } catch {
            throw DataError(file: fontDirectory, line: nil,
                            problem: "cannot list the fonts (install Debian's fonts-noto-core: bash launch/setup.sh)")
        }
        let renderer = try GlyphRenderer()
        let masterSide = 64
        var scripts: [Script] = [], classes: [(Int, Unicode.Scalar)] = [], masters: [[Float]] = [], extents: [Int] = []
        for file in files {
            guard file.hasPrefix("NotoSans"), file.hasSuffix("-Regular.ttf") else { continue }
            let name = String(file.dropFirst("NotoSans".count).dropLast("-Regular.ttf".count))
            guard !GlyphSet.notScripts.contains(name), name.allSatisfy(\.isLetter) else { continue }
            let glyphs = try renderer.glyphs(font: "\(fontDirectory)/\(file)", side: masterSide, limit: charactersPerScript)
            guard glyphs.count == charactersPerScript else { continue }
            for (character, master, extent) in glyphs {
                classes.append((scripts.count, character))
                masters.append(master)
                extents.append(extent)
            }
            scripts.append(Script(name: name, font: file, characters: glyphs.map(\.0)))
        }
        guard !scripts.isEmpty else {
            throw DataError(file: fontDirectory, line: nil, problem: "no NotoSans<Script>-Regular.ttf with \(charactersPerScript) usable characters")
        }
        (self.scripts, self.classes, self.masters, self.extents, self.masterSide) = (scripts, classes, masters, extents, masterSide)
        (self.side, self.seed) = (side, seed)
    }

    /// The classes of each script, in script order.
    public var classesByScript: [[Int]] {
        var byScript = [[Int]](repeating: [], count: scripts.count)
        for (c, entry) in classes.enumerated() { byScript[entry.script].append(c) }
        return byScript
    }

    /// Sample `index` of class `c`, `side`×`side` values row by row, the same for the same (seed, c, index): the
    /// glyph thickened or thinned by one master pixel (each a third of the time), then rotated by up to ±12°, scaled
    /// by 0.85–1.1, sheared by up to ±0.15 and moved by up to ±1.5 pixels about the centre, where its larger side
    /// spans 20/28 of the image; 3×3 samples per pixel.
    public func sample(class c: Int, index: Int) -> [Float] {
        require(classes.indices.contains(c) && index >= 0, "GlyphSet.sample: class \(c) of \(classes.count), index \(index)")
        var rng = RandomGenerator(seed: seed).split(UInt64(c)).split(UInt64(index))
        func uniform(_ low: Double, _ high: Double) -> Double { low + (high - low) * Double(rng.next() >> 11) / Double(1 << 53) }
        let stroke = Int(rng.next() % 3)
        let master = stroke == 0 ? masters[c] : morph(masters[c], side: masterSide, dilate: stroke == 1)
        let angle = uniform(-12, 12) * .pi / 180, scale = uniform(0.85, 1.1), shear = uniform(-0.15, 0.15)
        let (dx, dy) = (uniform(-1.5, 1.5), uniform(-1.5, 1.5))
        // Output pixel → master pixel: undo the move, rotation, shear and scale about the centres.
        let fit = Double(extents[c]) / (Double(side) * 20 / 28) / scale
        let (cosA, sinA) = (cos(angle), sin(angle))
        let half = Double(side) / 2, masterHalf = Double(masterSide) / 2
        var out = [Float](repeating: 0, count: side * side)
        for y in 0..<side {
            for x in 0..<side {
                var sum: Float = 0
                for sy in 0..<3 {
                    for sx in 0..<3 {
                        let px = Double(x) + (Double(sx) + 0.5) / 3 - half - dx, py = Double(y) + (Double(sy) + 0.5) / 3 - half - dy
                        let rx = cosA * px + sinA * py, ry = -sinA * px + cosA * py
                        let mx = (rx - shear * ry) * fit + masterHalf, my = ry * fit + masterHalf
                        sum += bilinear(master, side: masterSide, x: mx - 0.5, y: my - 0.5)
                    }
                }
                out[y * side + x] = sum / 9
            }
        }
        return out
    }

    /// `samplesPerClass` samples of each of `classes`, as [rows, 1, side, side] and the class of each row.
    public func images(classes chosen: [Int], samplesPerClass: Int) -> (images: Tensor, labels: [Int]) {
        var values: [Float] = [], labels: [Int] = []
        values.reserveCapacity(chosen.count * samplesPerClass * side * side)
        for c in chosen {
            for i in 0..<samplesPerClass {
                values += sample(class: c, index: i)
                labels.append(c)
            }
        }
        return (Tensor(values, shape: [labels.count, 1, side, side]), labels)
    }
}

private func bilinear(_ image: [Float], side: Int, x: Double, y: Double) -> Float {
    let x0 = Int(x.rounded(.down)), y0 = Int(y.rounded(.down))
    let fx = Float(x - Double(x0)), fy = Float(y - Double(y0))
    func at(_ i: Int, _ j: Int) -> Float { i >= 0 && j >= 0 && i < side && j < side ? image[j * side + i] : 0 }
    return (1 - fy) * ((1 - fx) * at(x0, y0) + fx * at(x0 + 1, y0)) + fy * ((1 - fx) * at(x0, y0 + 1) + fx * at(x0 + 1, y0 + 1))
}

/// A 3×3 maximum (thicker strokes) or minimum (thinner) of the coverage.
private func morph(_ image: [Float], side: Int, dilate: Bool) -> [Float] {
    var out = image
    for y in 0..<side {
        for x in 0..<side {
            var v = image[y * side + x]
            for j in max(0, y - 1)...min(side - 1, y + 1) {
                for i in max(0, x - 1)...min(side - 1, x + 1) { v = dilate ? max(v, image[j * side + i]) : min(v, image[j * side + i]) }
            }
            out[y * side + x] = v
        }
    }
    return out
}

/// FreeType, opened once for a set of fonts.
private final class GlyphRenderer {
    private var library: FT_Library?

    init() throws {
        guard FT_Init_FreeType(&library) == 0 else { throw DataError(file: "FreeType", line: nil, problem: "cannot initialise") }
    }

    deinit { FT_Done_FreeType(library) }

    /// The first `limit` usable characters of `font`, each rendered centred on a `side`×`side` canvas at an em of
    /// three quarters of it, with the larger side of its bitmap.
    func glyphs(font: String, side: Int, limit: Int) throws -> [(Unicode.Scalar, [Float], extent: Int)] {
        var face: FT_Face?
        guard FT_New_Face(library, font, 0, &face) == 0, let face else {
            throw DataError(file: font, line: nil, problem: "FreeType cannot read this font")
        }
        defer { FT_Done_Face(face) }
        let em = side * 3 / 4
        guard FT_Set_Pixel_Sizes(face, 0, FT_UInt(em)) == 0 else { throw DataError(file: font, line: nil, problem: "cannot size the font") }
        var found: [(Unicode.Scalar, [Float], extent: Int)] = []
        var seen = Set<[Float]>()
        var index: FT_UInt = 0
        var code = FT_Get_First_Char(face, &index)
        while index != 0 && found.count < limit {
            defer { code = FT_Get_Next_Char(face, code, &index) }
            guard let scalar = Unicode.Scalar(UInt32(code)), usable(scalar),
                  FT_Load_Glyph(face, index, Int32(FT_LOAD_RENDER)) == 0 else { continue }
            let bitmap = face.pointee.glyph.pointee.bitmap
            let (rows, width) = (Int(bitmap.rows), Int(bitmap.width))
            // Marks and dots are too small to tell apart once transformed; very wide glyphs do not fit.
            guard bitmap.pixel_mode == UInt8(FT_PIXEL_MODE_GRAY.rawValue), max(rows, width) >= em / 3,
                  rows <= side - 4, width <= side - 4, let buffer = bitmap.buffer else { continue }
            var canvas = [Float](repeating: 0, count: side * side)
            let (top, left) = ((side - rows) / 2, (side - width) / 2)
            var ink = 0
            for r in 0..<rows {
                for c in 0..<width {
                    let v = buffer[r * Int(bitmap.pitch) + c]
                    if v > 127 { ink += 1 }
                    canvas[(top + r) * side + left + c] = Float(v) / 255
                }
            }
            guard ink >= 20, seen.insert(canvas).inserted else { continue }
            found.append((scalar, canvas, max(rows, width)))
        }
        return found
    }

    /// Letters of a script: not ASCII or Latin-1, not a combining mark, a space, punctuation or a symbol block.
    private func usable(_ s: Unicode.Scalar) -> Bool {
        let v = s.value
        guard v >= 0x370, !(0x2000...0x2BFF).contains(v), !(0x3000...0x303F).contains(v), !(0xFE00...0xFE2F).contains(v),
              !(0x1AB0...0x1AFF).contains(v), !(0x1DC0...0x1DFF).contains(v), v < 0xFFF0 else { return false }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .otherLetter, .titlecaseLetter: return true
        default: return false
        }
    }
}
