import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// 3×3 stride-1 convolutions by Winograd's minimal filtering F(4×4, 3×3) (Lavin & Gray, "Fast Algorithms for
/// Convolutional Neural Networks", 2016): each 4×4 output tile costs 36 multiply-adds per channel pair instead of
/// 144, at the price of transforming input, weight and output tiles. The transforms run on channels-last copies so
/// that they vectorise over channels; the 36 products are 36 GEMMs [tiles, Cin] × [Cin, Cout].
///
/// The same routine gives the input gradient: for a stride-1 3×3 convolution it is the convolution of the output
/// gradient with the kernel flipped and its channel axes swapped, padded by 2 − pad.
struct WinogradConvolution {
    /// Input and output channels of the convolution computed (for the input gradient: Cout and Cin of the layer).
    let inC, outC: Int
    let h, w, oh, ow, top, left: Int
    /// Tiles per image down and across, and the zero-padded channels-last input plane those tiles read.
    let tilesH, tilesW, paddedH, paddedW: Int

    /// Whether `geo` is a convolution this path computes, and is worth computing this way: 3×3, stride 1, no
    /// dilation or groups, padding up to 2, at least 16 channels each way in whole SIMD8 blocks (fewer spend more
    /// on transforms than they save), and maps of at least one whole 4×4 tile.
    static func applies(cin: Int, cout: Int, _ geo: ConvGeometry) -> Bool {
        geo.kh == 3 && geo.kw == 3 && geo.strideH == 1 && geo.strideW == 1 && geo.dilationH == 1
            && geo.dilationW == 1 && geo.groups == 1 && geo.top <= 2 && geo.left <= 2
            && cin >= 16 && cout >= 16 && cin % 8 == 0 && cout % 8 == 0
            && geo.oh >= 4 && geo.ow >= 4 && geo.h >= 4 && geo.w >= 4 && enabled
    }

    /// `GRAFT_CONV_WINOGRAD=0` turns the path off (for measuring it against im2col).
    static let enabled: Bool = {
        guard let text = getenv("GRAFT_CONV_WINOGRAD") else { return true }
        return String(cString: text) != "0"
    }()

    /// The layer's forward convolution x [N, Cin, h, w] → [N, Cout, oh, ow].
    init(forward geo: ConvGeometry, cin: Int, cout: Int) {
        self.init(inC: cin, outC: cout, h: geo.h, w: geo.w, oh: geo.oh, ow: geo.ow, top: geo.top, left: geo.left)
    }

    /// The layer's input gradient, a convolution of g [N, Cout, oh, ow] → [N, Cin, h, w].
    init(inputGradient geo: ConvGeometry, cin: Int, cout: Int) {
        self.init(inC: cout, outC: cin, h: geo.oh, w: geo.ow, oh: geo.h, ow: geo.w, top: 2 - geo.top,
                  left: 2 - geo.left)
    }

    private init(inC: Int, outC: Int, h: Int, w: Int, oh: Int, ow: Int, top: Int, left: Int) {
        (self.inC, self.outC, self.h, self.w, self.oh, self.ow, self.top, self.left) = (inC, outC, h, w, oh, ow, top, left)
        tilesH = (oh + 3) / 4
        tilesW = (ow + 3) / 4
        paddedH = tilesH * 4 + 2
        paddedW = tilesW * 4 + 2
    }

    var tilesPerImage: Int { tilesH * tilesW }

    /// Images per pass: enough for `passRows` tiles, the rows of each of the 36 GEMMs, and beyond that as many as
    /// keep a pass's tile buffers within `passFloats` floats each.
    func imagesPerPass(_ batch: Int) -> Int {
        let rows = (WinogradConvolution.passRows + tilesPerImage - 1) / tilesPerImage
        let fit = WinogradConvolution.passFloats / (36 * tilesPerImage * Swift.max(inC, outC))
        return Swift.max(1, Swift.min(batch, Swift.max(rows, fit)))
    }

    /// Measured on ResNet-18 steps at 32 px, where each thread runs its own images with single-threaded GEMMs:
    /// 1 MiB buffers with at least 128 tile rows ran the head-only step 6–14 % faster, and the full step 8–10 %,
    /// than 16 MiB buffers, whose tiles fall out of cache between the transforms and the GEMMs; under 128 rows
    /// the small maps' GEMMs (one tile per image at 4×4) slow down, up to 1.5× at 8 rows.
    static let passRows = 128
    static let passFloats = 1 << 18

    /// The weight in the Winograd domain, U [36, outC, inC], from w [Cout, Cin, 3, 3]. With `flipped`, the kernel
    /// is the input gradient's: output channel o, input channel i and tap (a, b) read w[i, o, 2 − a, 2 − b].
    func transformWeight(_ weight: UnsafePointer<Float>, flipped: Bool) -> Storage {
        let u = Storage(count: 36 * outC * inC)
        let plane = outC * inC, (inC, outC) = (inC, outC)
        parallelChunks(outC, grain: Swift.max(1, 4096 / inC)) { range in
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: tileScratchBytes, alignment: 64)
            defer { scratch.deallocate() }
            // The taps of output channel o, tap-major: taps[t · inC + i] is tap t of input channel i.
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 9 * inC) { taps in
                for o in range {
                    for i in 0..<inC {
                        if flipped {
                            let src = weight + (i * outC + o) * 9
                            for t in 0..<9 { taps[t * inC + i] = src[8 - t] }
                        } else {
                            let src = weight + (o * inC + i) * 9
                            for t in 0..<9 { taps[t * inC + i] = src[t] }
                        }
                    }
                    let dst = u.pointer + o * inC
                    var i = 0
                    while i + 16 <= inC {
                        kernelTile(taps.baseAddress! + i, inC, dst + i, plane, SIMD16<Float>.self, scratch)
                        i += 16
                    }
                    if i < inC { kernelTile(taps.baseAddress! + i, inC, dst + i, plane, SIMD8<Float>.self, scratch) }
                }
            }
        }
        return u
    }

    /// y [N, outC, oh, ow] = conv(x [N, inC, h, w]) with the weight already transformed into `u`, then `epilogue`
    /// on each output row as it is written; y is fully written.
    /// With several threads, each takes a share of the images through every phase with single-threaded GEMMs, its
    /// tiles staying in its own core's cache; splitting each GEMM across threads instead measured 9–10 % slower on
    /// ResNet-18's head-only step (two threads). OpenBLAS is held to one thread meanwhile.
    func run(_ x: UnsafePointer<Float>, _ u: Storage, batch: Int, into y: UnsafeMutablePointer<Float>,
             then epilogue: ChannelEpilogue? = nil) {
        let (xs, ys) = (UncheckedSendable(x), UncheckedSendable(y))
        shareImages(batch) { first, count, parallel in
            let offset = first * outC * oh * ow
            run(xs.value + first * inC * h * w, u, batch: count, into: ys.value + offset,
                epilogue?.advanced(by: offset), parallel: parallel)
        }
    }

    private func run(_ x: UnsafePointer<Float>, _ u: Storage, batch: Int, into y: UnsafeMutablePointer<Float>,
                     _ epilogue: ChannelEpilogue?, parallel: Bool) {
        let images = imagesPerPass(batch)
        let padded = Storage(count: images * paddedH * paddedW * inC)
        let v = Storage(count: 36 * images * tilesPerImage * inC)
        let m = Storage(count: 36 * images * tilesPerImage * outC)
        let unpacked = Storage(count: images * oh * ow * outC)
        for first in stride(from: 0, to: batch, by: images) {
            let count = Swift.min(images, batch - first), tiles = count * tilesPerImage
            pack(x + first * inC * h * w, images: count, into: padded.pointer, parallel: parallel)
            transformInput(padded.pointer, tiles: tiles, into: v.pointer, parallel: parallel)
            for k in 0..<36 {
                sgemm(transA: false, transB: true, m: tiles, n: outC, k: inC, v.pointer + k * tiles * inC, lda: inC,
                      u.pointer + k * outC * inC, ldb: inC, beta: 0, m.pointer + k * tiles * outC, ldc: outC)
            }
            transformOutput(m.pointer, tiles: tiles, into: unpacked.pointer, parallel: parallel)
            let offset = first * outC * oh * ow
            unpack(unpacked.pointer, images: count, into: y + offset, epilogue?.advanced(by: offset), parallel: parallel)
        }
    }

    /// dw [outC, inC, 3, 3] = ∂⟨conv(x, w), g⟩/∂w for the forward convolution, g [N, outC, oh, ow]; dw is fully
    /// written. Per tile the forward is Aᵀ[(G w Gᵀ) ⊙ (Bᵀ d B)]A, so ∂/∂(G w Gᵀ) = Σ_tiles (A g Aᵀ) ⊙ (Bᵀ d B):
    /// 36 GEMMs [outC, tiles] × [tiles, inC], then Gᵀ · G back to 3×3.
    func weightGradient(_ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>, batch: Int,
                        into dw: UnsafeMutablePointer<Float>) {
        let images = imagesPerPass(batch)
        let padded = Storage(count: images * paddedH * paddedW * inC)
        let gradientTiles = Storage(count: images * tilesH * 4 * tilesW * 4 * outC)
        let v = Storage(count: 36 * images * tilesPerImage * inC)
        let e = Storage(count: 36 * images * tilesPerImage * outC)
        let du = Storage(count: 36 * outC * inC)
        for first in stride(from: 0, to: batch, by: images) {
            let count = Swift.min(images, batch - first), tiles = count * tilesPerImage
            pack(x + first * inC * h * w, images: count, into: padded.pointer)
            transformInput(padded.pointer, tiles: tiles, into: v.pointer)
            packChannelsLast(g + first * outC * oh * ow, images: count, channels: outC, h: oh, w: ow, top: 0, left: 0,
                             height: tilesH * 4, width: tilesW * 4, into: gradientTiles.pointer)
            transformGradient(gradientTiles.pointer, tiles: tiles, into: e.pointer)
            for k in 0..<36 {
                sgemm(transA: true, transB: false, m: outC, n: inC, k: tiles, e.pointer + k * tiles * outC, lda: outC,
                      v.pointer + k * tiles * inC, ldb: inC, beta: first == 0 ? 0 : 1, du.pointer + k * outC * inC,
                      ldc: inC)
            }
        }
        let plane = outC * inC, (inC, outC) = (inC, outC)
        parallelChunks(outC, grain: Swift.max(1, 4096 / inC)) { range in
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: tileScratchBytes, alignment: 64)
            defer { scratch.deallocate() }
            withUnsafeTemporaryAllocation(of: Float.self, capacity: 9 * inC) { taps in
                for o in range {
                    let src = du.pointer + o * inC
                    var i = 0
                    while i + 16 <= inC {
                        kernelAdjointTile(src + i, plane, taps.baseAddress! + i, inC, SIMD16<Float>.self, scratch)
                        i += 16
                    }
                    if i < inC { kernelAdjointTile(src + i, plane, taps.baseAddress! + i, inC, SIMD8<Float>.self, scratch) }
                    for i in 0..<inC {
                        let d = dw + (o * inC + i) * 9
                        for t in 0..<9 { d[t] = taps[t * inC + i] }
                    }
                }
            }
        }
    }

    /// E[k, tile, channel] = (A g Aᵀ)[k] for the 4×4 output-gradient patch g of every tile, read from channels-last
    /// planes [images, 4 · tilesH, 4 · tilesW, outC].
    private func transformGradient(_ p: UnsafePointer<Float>, tiles: Int, into e: UnsafeMutablePointer<Float>) {
        let (c, width, th) = (outC, tilesW * 4, tilesH)
        forEachTileBlock(tiles: tiles, channels: c, parallel: true) { tile, n, ty, tx, ch, wide, scratch in
            let origin = p + ((n * th * 4 + ty * 4) * width + tx * 4) * c + ch, out = e + tile * c + ch
            if wide {
                gradientTile(origin, rowStride: width * c, columnStride: c, out, tiles * c, SIMD16<Float>.self, scratch)
            } else {
                gradientTile(origin, rowStride: width * c, columnStride: c, out, tiles * c, SIMD8<Float>.self, scratch)
            }
        }
    }

    /// NCHW images → zero-padded channels-last planes [images, paddedH, paddedW, inC], input row y at y + top.
    private func pack(_ x: UnsafePointer<Float>, images: Int, into p: UnsafeMutablePointer<Float>, parallel: Bool = true) {
        packChannelsLast(x, images: images, channels: inC, h: h, w: w, top: top, left: left, height: paddedH,
                         width: paddedW, into: p, parallel: parallel)
    }

    /// V[k, tile, channel] = (Bᵀ d B)[k] for the 6×6 input patch d of every tile.
    private func transformInput(_ p: UnsafePointer<Float>, tiles: Int, into v: UnsafeMutablePointer<Float>,
                                parallel: Bool = true) {
        let (c, pw, ph) = (inC, paddedW, paddedH)
        forEachTileBlock(tiles: tiles, channels: c, parallel: parallel) { tile, n, ty, tx, ch, wide, scratch in
            let origin = p + ((n * ph + ty * 4) * pw + tx * 4) * c + ch, out = v + tile * c + ch
            if wide {
                inputTile(origin, rowStride: pw * c, columnStride: c, out, tiles * c, SIMD16<Float>.self, scratch)
            } else {
                inputTile(origin, rowStride: pw * c, columnStride: c, out, tiles * c, SIMD8<Float>.self, scratch)
            }
        }
    }

    /// Channels-last output tiles [images, oh, ow, outC] = Aᵀ M A for every tile, clipped to the output size.
    private func transformOutput(_ m: UnsafePointer<Float>, tiles: Int, into y: UnsafeMutablePointer<Float>,
                                 parallel: Bool = true) {
        let (c, oh, ow) = (outC, oh, ow)
        forEachTileBlock(tiles: tiles, channels: c, parallel: parallel) { tile, n, ty, tx, ch, wide, scratch in
            let rows = Swift.min(4, oh - ty * 4), columns = Swift.min(4, ow - tx * 4)
            let source = m + tile * c + ch, origin = y + ((n * oh + ty * 4) * ow + tx * 4) * c + ch
            if wide {
                outputTile(source, tiles * c, origin, rowStride: ow * c, columnStride: c, rows: rows, columns: columns,
                           SIMD16<Float>.self, scratch)
            } else {
                outputTile(source, tiles * c, origin, rowStride: ow * c, columnStride: c, rows: rows, columns: columns,
                           SIMD8<Float>.self, scratch)
            }
        }
    }

    /// Calls `body(tile, image, tileRow, tileColumn, channel, wide, scratch)` for every tile and every block of
    /// channels: 16 wide, then one block of 8 for the rest. Each parallel chunk gets its own scratch.
    @inline(__always)
    private func forEachTileBlock(tiles: Int, channels c: Int, parallel: Bool,
                                  _ body: (Int, Int, Int, Int, Int, Bool, UnsafeMutableRawPointer) -> Void) {
        let (tw, per) = (tilesW, tilesPerImage)
        chunks(tiles, grain: Swift.max(1, 8192 / c), parallel: parallel) { range in
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: tileScratchBytes, alignment: 64)
            defer { scratch.deallocate() }
            for tile in range {
                let n = tile / per, ty = tile % per / tw, tx = tile % per % tw
                var ch = 0
                while ch + 16 <= c {
                    body(tile, n, ty, tx, ch, true, scratch)
                    ch += 16
                }
                if ch < c { body(tile, n, ty, tx, ch, false, scratch) }
            }
        }
    }

    /// Channels-last [images, oh, ow, outC] → NCHW, eight channels at a time, each row finished by `epilogue`
    /// while it is in cache.
    private func unpack(_ t: UnsafePointer<Float>, images: Int, into y: UnsafeMutablePointer<Float>,
                        _ epilogue: ChannelEpilogue?, parallel: Bool) {
        let (c, oh, ow) = (outC, oh, ow)
        chunks(images * oh, grain: 4, parallel: parallel) { range in
            for r in range {
                let n = r / oh, row = r % oh, src = t + r * ow * c, plane = oh * ow
                for ch in stride(from: 0, to: c, by: 8) {
                    let block = Swift.min(8, c - ch), at = ((n * c + ch) * oh + row) * ow
                    transpose(src + ch, stride: c, rows: ow, columns: block, into: y + at, stride: plane)
                    guard let epilogue else { continue }
                    for k in 0..<block {
                        epilogue.apply(to: y + at + k * plane, count: ow, channel: ch + k, at: at + k * plane)
                    }
                }
            }
        }
    }
}

/// Room for one tile's intermediate vectors (at most 36 of SIMD16), allocated once per parallel chunk.
let tileScratchBytes = 36 * MemoryLayout<SIMD16<Float>>.stride

/// NCHW planes [images, channels, h, w] → channels-last [images, height, width, channels], element (y, x) at
/// (y + top, x + left) and zero elsewhere.
private func packChannelsLast(_ x: UnsafePointer<Float>, images: Int, channels c: Int, h: Int, w: Int, top: Int,
                              left: Int, height: Int, width: Int, into p: UnsafeMutablePointer<Float>,
                              parallel: Bool = true) {
    let columns = Swift.min(w, width - left)
    chunks(images * height, grain: 4, parallel: parallel) { range in
        for r in range {
            let n = r / height, y = r % height - top, row = p + r * width * c
            row.update(repeating: 0, count: width * c)
            guard y >= 0 && y < h else { continue }
            transpose(x + n * c * h * w + y * w, stride: h * w, rows: c, columns: columns, into: row + left * c,
                      stride: c)
        }
    }
}
