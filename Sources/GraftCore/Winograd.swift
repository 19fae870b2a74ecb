import CBLAS
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

    /// Images per pass: a pass's tile buffers stay within `passFloats` floats each.
    func imagesPerPass(_ batch: Int) -> Int {
        Swift.max(1, Swift.min(batch, WinogradConvolution.passFloats / (36 * tilesPerImage * Swift.max(inC, outC))))
    }

    /// Measured on ResNet-18 steps: smaller passes (1–8 MiB buffers) ran up to twice as slow at two threads, where
    /// the 36 GEMMs get too small for OpenBLAS to split well.
    static let passFloats = 1 << 22

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

    /// y [N, outC, oh, ow] = conv(x [N, inC, h, w]) with the weight already transformed into `u`; y is fully written.
    /// With several threads, each takes a share of the images through every phase with single-threaded GEMMs, its
    /// tiles staying in its own core's cache; splitting each GEMM across threads instead measured 9–10 % slower on
    /// ResNet-18's head-only step (two threads). OpenBLAS is held to one thread meanwhile.
    func run(_ x: UnsafePointer<Float>, _ u: Storage, batch: Int, into y: UnsafeMutablePointer<Float>) {
        let groups = Swift.min(kernelThreads, batch)
        guard groups > 1 else { return run(x, u, batch: batch, into: y, parallel: true) }
        let per = (batch + groups - 1) / groups
        let saved = openblas_get_num_threads()
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(saved) }
        let (xs, ys) = (UncheckedSendable(x), UncheckedSendable(y))
        DispatchQueue.concurrentPerform(iterations: groups) { g in
            let first = g * per, count = Swift.min(per, batch - first)
            guard count > 0 else { return }
            run(xs.value + first * inC * h * w, u, batch: count, into: ys.value + first * outC * oh * ow, parallel: false)
        }
    }

    private func run(_ x: UnsafePointer<Float>, _ u: Storage, batch: Int, into y: UnsafeMutablePointer<Float>,
                     parallel: Bool) {
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
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(tiles), Int32(outC), Int32(inC), 1,
                            v.pointer + k * tiles * inC, Int32(inC), u.pointer + k * outC * inC, Int32(inC), 0,
                            m.pointer + k * tiles * outC, Int32(outC))
            }
            transformOutput(m.pointer, tiles: tiles, into: unpacked.pointer, parallel: parallel)
            unpack(unpacked.pointer, images: count, into: y + first * outC * oh * ow, parallel: parallel)
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
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, Int32(outC), Int32(inC), Int32(tiles), 1,
                            e.pointer + k * tiles * outC, Int32(outC), v.pointer + k * tiles * inC, Int32(inC),
                            first == 0 ? 0 : 1, du.pointer + k * outC * inC, Int32(inC))
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
        let (c, width, tw, th, per) = (outC, tilesW * 4, tilesW, tilesH, tilesPerImage)
        let stride = tiles * c
        parallelChunks(tiles, grain: Swift.max(1, 8192 / c)) { range in
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: tileScratchBytes, alignment: 64)
            defer { scratch.deallocate() }
            for tile in range {
                let n = tile / per, ty = tile % per / tw, tx = tile % per % tw
                let origin = p + ((n * th * 4 + ty * 4) * width + tx * 4) * c
                var ch = 0
                while ch + 16 <= c {
                    gradientTile(origin + ch, rowStride: width * c, columnStride: c, e + tile * c + ch, stride,
                                 SIMD16<Float>.self, scratch)
                    ch += 16
                }
                if ch < c {
                    gradientTile(origin + ch, rowStride: width * c, columnStride: c, e + tile * c + ch, stride,
                                 SIMD8<Float>.self, scratch)
                }
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
        let (c, pw, ph, tw, per) = (inC, paddedW, paddedH, tilesW, tilesPerImage)
        let stride = tiles * c
        chunks(tiles, grain: Swift.max(1, 8192 / c), parallel: parallel) { range in
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: tileScratchBytes, alignment: 64)
            defer { scratch.deallocate() }
            for tile in range {
                let n = tile / per, ty = tile % per / tw, tx = tile % per % tw
                let origin = p + ((n * ph + ty * 4) * pw + tx * 4) * c
                let out = v + tile * c
                var ch = 0
                while ch + 16 <= c {
                    inputTile(origin + ch, rowStride: pw * c, columnStride: c, out + ch, stride, SIMD16<Float>.self, scratch)
                    ch += 16
                }
                if ch < c { inputTile(origin + ch, rowStride: pw * c, columnStride: c, out + ch, stride, SIMD8<Float>.self, scratch) }
            }
        }
    }

    /// Channels-last output tiles [images, oh, ow, outC] = Aᵀ M A for every tile, clipped to the output size.
    private func transformOutput(_ m: UnsafePointer<Float>, tiles: Int, into y: UnsafeMutablePointer<Float>,
                                 parallel: Bool = true) {
        let (c, oh, ow, tw, per) = (outC, oh, ow, tilesW, tilesPerImage)
        let stride = tiles * c
        chunks(tiles, grain: Swift.max(1, 8192 / c), parallel: parallel) { range in
            let scratch = UnsafeMutableRawPointer.allocate(byteCount: tileScratchBytes, alignment: 64)
            defer { scratch.deallocate() }
            for tile in range {
                let n = tile / per, ty = tile % per / tw, tx = tile % per % tw
                let rows = Swift.min(4, oh - ty * 4), columns = Swift.min(4, ow - tx * 4)
                let origin = y + ((n * oh + ty * 4) * ow + tx * 4) * c
                var ch = 0
                while ch + 16 <= c {
                    outputTile(m + tile * c + ch, stride, origin + ch, rowStride: ow * c, columnStride: c,
                               rows: rows, columns: columns, SIMD16<Float>.self, scratch)
                    ch += 16
                }
                if ch < c {
                    outputTile(m + tile * c + ch, stride, origin + ch, rowStride: ow * c, columnStride: c,
                               rows: rows, columns: columns, SIMD8<Float>.self, scratch)
                }
            }
        }
    }

    /// Channels-last [images, oh, ow, outC] → NCHW.
    private func unpack(_ t: UnsafePointer<Float>, images: Int, into y: UnsafeMutablePointer<Float>, parallel: Bool = true) {
        let (c, oh, ow) = (outC, oh, ow)
        chunks(images * oh, grain: 4, parallel: parallel) { range in
            for r in range {
                let n = r / oh, row = r % oh, src = t + r * ow * c
                for ch in 0..<c {
                    let d = y + ((n * c + ch) * oh + row) * ow, s = src + ch
                    for xi in 0..<ow { d[xi] = s[xi * c] }
                }
            }
        }
    }
}

/// `parallelChunks`, or the whole range on this thread.
@inline(__always)
private func chunks(_ count: Int, grain: Int, parallel: Bool, _ body: (Range<Int>) -> Void) {
    if parallel { parallelChunks(count, grain: grain, body) } else { body(0..<count) }
}

/// Room for one tile's intermediate vectors (at most 36 of SIMD16), allocated once per parallel chunk.
private let tileScratchBytes = 36 * MemoryLayout<SIMD16<Float>>.stride

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
            let src = x + n * c * h * w + y * w
            for ch in 0..<c {
                let s = src + ch * h * w, d = row + left * c + ch
                for xi in 0..<columns { d[xi * c] = s[xi] }
            }
        }
    }
}

/// G g for one column (g0, g1, g2) of a 3×3 kernel: the six rows of the kernel transform.
@inline(__always)
private func kernelRows<V: SIMD>(_ g0: V, _ g1: V, _ g2: V) -> (V, V, V, V, V, V) where V.Scalar == Float {
    let a = -(g0 + g1 + g2) / 6, b = -(g0 - g1 + g2) / 6
    let c = g0 / 24 + g1 / 12 + g2 / 6, d = g0 / 24 - g1 / 12 + g2 / 6
    return (g0 / 4, a, b, c, d, g2)
}

/// G g Gᵀ for V.scalarCount kernels, tap t of each at taps + t · tapStride; entry k goes to out + k · stride.
@inline(__always)
private func kernelTile<V: SIMD>(_ taps: UnsafePointer<Float>, _ tapStride: Int, _ out: UnsafeMutablePointer<Float>,
                                 _ stride: Int, _: V.Type, _ scratch: UnsafeMutableRawPointer) where V.Scalar == Float {
    do {
        let t = scratch.bindMemory(to: V.self, capacity: 18)
        for b in 0..<3 {
            let c = taps + b * tapStride
            let r = kernelRows(load(c, V.self), load(c + 3 * tapStride, V.self), load(c + 6 * tapStride, V.self))
            (t[b], t[3 + b], t[6 + b], t[9 + b], t[12 + b], t[15 + b]) = r
        }
        for k in 0..<6 {
            let r = kernelRows(t[k * 3], t[k * 3 + 1], t[k * 3 + 2])
            let o = out + k * 6 * stride
            store(r.0, o); store(r.1, o + stride); store(r.2, o + 2 * stride)
            store(r.3, o + 3 * stride); store(r.4, o + 4 * stride); store(r.5, o + 5 * stride)
        }
    }
}

/// Gᵀ u for one column u0…u5 of a transformed kernel: the adjoint of `kernelRows`.
@inline(__always)
private func kernelAdjointRows<V: SIMD>(_ u0: V, _ u1: V, _ u2: V, _ u3: V, _ u4: V, _ u5: V) -> (V, V, V)
where V.Scalar == Float {
    let s = u1 + u2, d = u2 - u1, p = u3 + u4, q = u3 - u4
    return (u0 / 4 - s / 6 + p / 24, d / 6 + q / 12, -s / 6 + p / 6 + u5)
}

/// A g for one column g0…g3 of an output-gradient patch: the adjoint of `outputRows`.
@inline(__always)
private func gradientRows<V: SIMD>(_ g0: V, _ g1: V, _ g2: V, _ g3: V) -> (V, V, V, V, V, V) where V.Scalar == Float {
    let even = g0 + g2, odd = g1 + g3, even4 = g0 + 4 * g2, odd2 = 2 * g1 + 8 * g3
    return (g0, even + odd, even - odd, even4 + odd2, even4 - odd2, g3)
}

/// Gᵀ u G for V.scalarCount kernels, entry k of each at u + k · stride; tap t goes to taps + t · tapStride.
@inline(__always)
private func kernelAdjointTile<V: SIMD>(_ u: UnsafePointer<Float>, _ stride: Int, _ taps: UnsafeMutablePointer<Float>,
                                        _ tapStride: Int, _: V.Type, _ scratch: UnsafeMutableRawPointer) where V.Scalar == Float {
    do {
        let t = scratch.bindMemory(to: V.self, capacity: 18)
        for j in 0..<6 {
            let c = u + j * stride
            let r = kernelAdjointRows(load(c, V.self), load(c + 6 * stride, V.self), load(c + 12 * stride, V.self),
                                      load(c + 18 * stride, V.self), load(c + 24 * stride, V.self),
                                      load(c + 30 * stride, V.self))
            (t[j], t[6 + j], t[12 + j]) = r
        }
        for a in 0..<3 {
            let r = kernelAdjointRows(t[a * 6], t[a * 6 + 1], t[a * 6 + 2], t[a * 6 + 3], t[a * 6 + 4], t[a * 6 + 5])
            let o = taps + a * 3 * tapStride
            store(r.0, o); store(r.1, o + tapStride); store(r.2, o + 2 * tapStride)
        }
    }
}

/// One tile's A g Aᵀ for V.scalarCount channels of a 4×4 gradient patch; entry k goes to out + k · stride.
@inline(__always)
private func gradientTile<V: SIMD>(_ g: UnsafePointer<Float>, rowStride: Int, columnStride: Int,
                                   _ out: UnsafeMutablePointer<Float>, _ stride: Int, _: V.Type, _ scratch: UnsafeMutableRawPointer) where V.Scalar == Float {
    do {
        let t = scratch.bindMemory(to: V.self, capacity: 24)
        for j in 0..<4 {
            let c = g + j * columnStride
            let r = gradientRows(load(c, V.self), load(c + rowStride, V.self), load(c + 2 * rowStride, V.self),
                                 load(c + 3 * rowStride, V.self))
            (t[j], t[4 + j], t[8 + j], t[12 + j], t[16 + j], t[20 + j]) = r
        }
        for i in 0..<6 {
            let r = gradientRows(t[i * 4], t[i * 4 + 1], t[i * 4 + 2], t[i * 4 + 3])
            let o = out + i * 6 * stride
            store(r.0, o); store(r.1, o + stride); store(r.2, o + 2 * stride)
            store(r.3, o + 3 * stride); store(r.4, o + 4 * stride); store(r.5, o + 5 * stride)
        }
    }
}

/// Bᵀ d for one column d0…d5 of an input patch.
@inline(__always)
private func inputRows<V: SIMD>(_ d0: V, _ d1: V, _ d2: V, _ d3: V, _ d4: V, _ d5: V) -> (V, V, V, V, V, V)
where V.Scalar == Float {
    let s = d4 - 4 * d2, t = d3 - 4 * d1   // rows 1 and 2: s ± t
    let p = d4 - d2, q = 2 * (d3 - d1)     // rows 3 and 4: p ± q
    return (4 * d0 - 5 * d2 + d4, s + t, s - t, p + q, p - q, 4 * d1 - 5 * d3 + d5)
}

/// Aᵀ m for one column m0…m5 of a transformed tile.
@inline(__always)
private func outputRows<V: SIMD>(_ m0: V, _ m1: V, _ m2: V, _ m3: V, _ m4: V, _ m5: V) -> (V, V, V, V)
where V.Scalar == Float {
    let a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4
    return (m0 + a + c, b + 2 * d, a + 4 * c, b + 8 * d + m5)
}

@inline(__always)
private func load<V: SIMD>(_ p: UnsafePointer<Float>, _: V.Type) -> V where V.Scalar == Float {
    UnsafeRawPointer(p).loadUnaligned(as: V.self)
}

@inline(__always)
private func store<V: SIMD>(_ value: V, _ p: UnsafeMutablePointer<Float>) where V.Scalar == Float {
    UnsafeMutableRawPointer(p).storeBytes(of: value, as: V.self)
}

/// One tile's Bᵀ d B for V.scalarCount channels; output k goes to out + k · stride.
@inline(__always)
private func inputTile<V: SIMD>(_ d: UnsafePointer<Float>, rowStride: Int, columnStride: Int,
                                _ out: UnsafeMutablePointer<Float>, _ stride: Int, _: V.Type, _ scratch: UnsafeMutableRawPointer) where V.Scalar == Float {
    do {
        let t = scratch.bindMemory(to: V.self, capacity: 36)
        for j in 0..<6 {
            let c = d + j * columnStride
            let r = inputRows(load(c, V.self), load(c + rowStride, V.self), load(c + 2 * rowStride, V.self),
                              load(c + 3 * rowStride, V.self), load(c + 4 * rowStride, V.self),
                              load(c + 5 * rowStride, V.self))
            (t[j], t[6 + j], t[12 + j], t[18 + j], t[24 + j], t[30 + j]) = r
        }
        for i in 0..<6 {
            let r = inputRows(t[i * 6], t[i * 6 + 1], t[i * 6 + 2], t[i * 6 + 3], t[i * 6 + 4], t[i * 6 + 5])
            let o = out + i * 6 * stride
            store(r.0, o); store(r.1, o + stride); store(r.2, o + 2 * stride)
            store(r.3, o + 3 * stride); store(r.4, o + 4 * stride); store(r.5, o + 5 * stride)
        }
    }
}

/// One tile's Aᵀ m A for V.scalarCount channels, m's entry k at m + k · stride; writes rows × columns outputs.
@inline(__always)
private func outputTile<V: SIMD>(_ m: UnsafePointer<Float>, _ stride: Int, _ y: UnsafeMutablePointer<Float>,
                                 rowStride: Int, columnStride: Int, rows: Int, columns: Int, _: V.Type, _ scratch: UnsafeMutableRawPointer)
where V.Scalar == Float {
    do {
        let t = scratch.bindMemory(to: V.self, capacity: 24)
        for j in 0..<6 {
            let c = m + j * stride
            let r = outputRows(load(c, V.self), load(c + 6 * stride, V.self), load(c + 12 * stride, V.self),
                               load(c + 18 * stride, V.self), load(c + 24 * stride, V.self),
                               load(c + 30 * stride, V.self))
            (t[j], t[6 + j], t[12 + j], t[18 + j]) = r
        }
        for i in 0..<rows {
            let r = outputRows(t[i * 6], t[i * 6 + 1], t[i * 6 + 2], t[i * 6 + 3], t[i * 6 + 4], t[i * 6 + 5])
            let o = y + i * rowStride
            store(r.0, o)
            if columns > 1 { store(r.1, o + columnStride) }
            if columns > 2 { store(r.2, o + 2 * columnStride) }
            if columns > 3 { store(r.3, o + 3 * columnStride) }
        }
    }
}
