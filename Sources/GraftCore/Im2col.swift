/// Output columns (images × positions) one GEMM should have: with fewer, sgemm runs well short of its peak, so
/// small feature maps are batched over several images (measured: 3×3 convs at 7×7 and 14×14 reach full speed).
private let gemmColumnTarget = 4096
/// Largest column buffer, in floats, that batching may allocate.
private let columnBufferLimit = 1 << 22

/// A convolution lowered to one GEMM per group and batch of images: the input unfolded into a column matrix
/// [Cin/groups · kh · kw, images · oh · ow], the weight of group g as [Cout/groups, Cin/groups · kh · kw].
private struct Lowering {
    let geo: ConvGeometry
    let batch, cin, cout: Int
    let images: Int

    init(batch: Int, cin: Int, cout: Int, _ geo: ConvGeometry) {
        self.geo = geo
        self.batch = batch
        self.cin = cin
        self.cout = cout
        let l = Swift.max(geo.outPlane, 1), depth = cin / geo.groups * geo.taps
        images = Swift.max(1, Swift.min(batch, (gemmColumnTarget + l - 1) / l, columnBufferLimit / Swift.max(depth * l, 1)))
    }

    var inGroup: Int { cin / geo.groups }
    var outGroup: Int { cout / geo.groups }
    var depth: Int { inGroup * geo.taps }

    /// Batches of images, each handled by one GEMM per group.
    var chunks: StrideTo<Int> { stride(from: 0, to: batch, by: images) }

    func chunkSize(_ first: Int) -> Int { Swift.min(images, batch - first) }

    /// Pointwise convolutions of single images read their input in place.
    func readsInPlace(_ count: Int) -> Bool { geo.isPointwise && count == 1 }

    func newColumns() -> Storage? { readsInPlace(images) ? nil : Storage(count: depth * images * geo.outPlane) }

    func newStaging() -> Storage? { images > 1 ? Storage(count: outGroup * images * geo.outPlane) : nil }

    /// The column matrix of group `g` for images first..<first+count.
    func columns(_ x: UnsafePointer<Float>, first: Int, count: Int, group g: Int,
                 _ buffer: Storage?) -> UnsafePointer<Float> {
        let source = x + (first * cin + g * inGroup) * geo.inPlane
        if readsInPlace(count) { return source }
        im2col(source, imageStride: cin * geo.inPlane, images: count, channels: inGroup, geo, into: buffer!.pointer)
        return UnsafePointer(buffer!.pointer)
    }

    /// Moves the channels of group `g` for images first..<first+count between a [N, Cout, L] tensor and the
    /// matrix [Cout/groups, count · L] (toMatrix), or back.
    func stage(_ tensor: UnsafeMutablePointer<Float>, _ matrix: UnsafeMutablePointer<Float>, first: Int, count: Int,
               group g: Int, toMatrix: Bool) {
        let l = geo.outPlane, og = outGroup
        parallelChunks(og * count, grain: Swift.max(1, (1 << 15) / Swift.max(l, 1))) { range in
            for r in range {
                let c = r / count, b = r % count
                let t = tensor + ((first + b) * cout + g * og + c) * l, m = matrix + (c * count + b) * l
                if toMatrix { m.update(from: t, count: l) } else { t.update(from: m, count: l) }
            }
        }
    }

    /// The output gradient of group `g` as a matrix [Cout/groups, count · L], copied only when count > 1.
    func gradientMatrix(_ g: UnsafeMutablePointer<Float>, first: Int, count: Int, group gi: Int,
                        _ staging: Storage?) -> UnsafePointer<Float> {
        if count == 1 { return UnsafePointer(g + (first * cout + gi * outGroup) * geo.outPlane) }
        stage(g, staging!.pointer, first: first, count: count, group: gi, toMatrix: true)
        return UnsafePointer(staging!.pointer)
    }
}

@inline(__always)
private func sgemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>, _ lda: Int,
                   _ b: UnsafePointer<Float>, _ ldb: Int, beta: Float, _ c: UnsafeMutablePointer<Float>, _ ldc: Int) {
    GraftCore.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, a, lda: lda, b, ldb: ldb, beta: beta, c, ldc: ldc)
}

/// y = conv(x, w) through im2col and sgemm; y is fully written.
func gemmConvForward(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                     batch: Int, cin: Int, cout: Int, _ geo: ConvGeometry) {
    let plan = Lowering(batch: batch, cin: cin, cout: cout, geo)
    let columns = plan.newColumns(), staging = plan.newStaging()
    let l = geo.outPlane, og = plan.outGroup, k = plan.depth
    for first in plan.chunks {
        let count = plan.chunkSize(first), ld = count * l
        for g in 0..<geo.groups {
            let col = plan.columns(x, first: first, count: count, group: g, columns)
            let target = count == 1 ? y + (first * cout + g * og) * l : staging!.pointer
            sgemm(false, false, og, ld, k, w + g * og * k, k, col, ld, beta: 0, target, ld)
            if count > 1 { plan.stage(y, staging!.pointer, first: first, count: count, group: g, toMatrix: false) }
        }
    }
}

/// dx += convInputGrad(g, w): sgemm with the transposed weight, then col2im; dx must start zeroed.
func gemmConvInputGrad(_ g: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
                       batch: Int, cin: Int, cout: Int, _ geo: ConvGeometry) {
    let plan = Lowering(batch: batch, cin: cin, cout: cout, geo)
    let columns = plan.newColumns(), staging = plan.newStaging()
    let l = geo.outPlane, og = plan.outGroup, k = plan.depth
    for first in plan.chunks {
        let count = plan.chunkSize(first), ld = count * l
        for gi in 0..<geo.groups {
            let gm = plan.gradientMatrix(g, first: first, count: count, group: gi, staging)
            let target = dx + (first * cin + gi * plan.inGroup) * geo.inPlane
            if plan.readsInPlace(count) {
                sgemm(true, false, k, ld, og, w + gi * og * k, k, gm, ld, beta: 0, target, ld)
            } else {
                sgemm(true, false, k, ld, og, w + gi * og * k, k, gm, ld, beta: 0, columns!.pointer, ld)
                col2im(columns!.pointer, imageStride: cin * geo.inPlane, images: count, channels: plan.inGroup, geo,
                       into: target)
            }
        }
    }
}

/// dw += convWeightGrad(x, g): the output gradient times the transposed column matrix; dw must start zeroed.
func gemmConvWeightGrad(_ x: UnsafePointer<Float>, _ g: UnsafeMutablePointer<Float>, _ dw: UnsafeMutablePointer<Float>,
                        batch: Int, cin: Int, cout: Int, _ geo: ConvGeometry) {
    let plan = Lowering(batch: batch, cin: cin, cout: cout, geo)
    let columns = plan.newColumns(), staging = plan.newStaging()
    let og = plan.outGroup, k = plan.depth
    for first in plan.chunks {
        let count = plan.chunkSize(first), ld = count * geo.outPlane
        for gi in 0..<geo.groups {
            let col = plan.columns(x, first: first, count: count, group: gi, columns)
            let gm = plan.gradientMatrix(g, first: first, count: count, group: gi, staging)
            sgemm(false, true, og, k, ld, gm, ld, col, ld, beta: 1, dw + gi * og * k, k)
        }
    }
}

/// Unfolds `channels` planes of `images` images into `col` [channels · kh · kw, images · oh · ow]: row (c, ki, kj),
/// column (image, oy, ox) holds the input under that tap, zero where the tap falls in the padding.
private func im2col(_ x: UnsafePointer<Float>, imageStride: Int, images: Int, channels: Int, _ geo: ConvGeometry,
                    into col: UnsafeMutablePointer<Float>) {
    // Vector loads stay inside these images' planes.
    let bounds = x..<(x + (images - 1) * imageStride + channels * geo.inPlane)
    let l = geo.outPlane, ld = images * l, ow = geo.ow, sw = geo.strideW
    parallelChunks(images * channels, grain: Swift.max(1, (1 << 14) / Swift.max(geo.taps * l, 1))) { range in
        for p in range {
            let b = p / channels, c = p % channels
            let plane = x + b * imageStride + c * geo.inPlane
            for ki in 0..<geo.kh {
                let rows = geo.rows(tap: ki)
                for kj in 0..<geo.kw {
                    let cols = geo.columns(tap: kj), shift = kj * geo.dilationW - geo.left
                    let row = col + ((c * geo.kh + ki) * geo.kw + kj) * ld + b * l
                    row.update(repeating: 0, count: rows.lowerBound * ow)
                    for oy in rows {
                        let dst = row + oy * ow, src = plane + (oy * geo.strideH - geo.top + ki * geo.dilationH) * geo.w + shift
                        if sw == 1 {
                            dst.update(repeating: 0, count: cols.lowerBound)
                            (dst + cols.lowerBound).update(from: src + cols.lowerBound, count: cols.count)
                            (dst + cols.upperBound).update(repeating: 0, count: ow - cols.upperBound)
                        } else {
                            gatherStrided(dst, src, count: ow, valid: cols, stride: sw, bounds: bounds)
                        }
                    }
                    (row + rows.upperBound * ow).update(repeating: 0, count: (geo.oh - rows.upperBound) * ow)
                }
            }
        }
    }
}

/// The adjoint of `im2col`: adds every column entry back onto the input position its tap reads.
private func col2im(_ col: UnsafePointer<Float>, imageStride: Int, images: Int, channels: Int, _ geo: ConvGeometry,
                    into x: UnsafeMutablePointer<Float>) {
    let l = geo.outPlane, ld = images * l, ow = geo.ow, sw = geo.strideW
    parallelChunks(images * channels, grain: Swift.max(1, (1 << 14) / Swift.max(geo.taps * l, 1))) { range in
        for p in range {
            let b = p / channels, c = p % channels
            let plane = x + b * imageStride + c * geo.inPlane
            for ki in 0..<geo.kh {
                let rows = geo.rows(tap: ki)
                for kj in 0..<geo.kw {
                    let cols = geo.columns(tap: kj), shift = kj * geo.dilationW - geo.left
                    let row = col + ((c * geo.kh + ki) * geo.kw + kj) * ld + b * l
                    for oy in rows {
                        let src = row + oy * ow, dst = plane + (oy * geo.strideH - geo.top + ki * geo.dilationH) * geo.w + shift
                        if sw == 1 {
                            for ox in cols { dst[ox] += src[ox] }
                        } else {
                            for ox in cols { dst[ox * sw] += src[ox] }
                        }
                    }
                }
            }
        }
    }
}

/// Calls `body(ki, kj, oy, columns, inputRow)` for every kernel tap and output row whose tap lands inside the
/// input, with `inputRow` the offset of the input element that output column 0 would read (ox · strideW added on use).
@inline(__always)
private func forEachTapRow(_ geo: ConvGeometry, _ body: (Int, Int, Int, Range<Int>, Int) -> Void) {
    for ki in 0..<geo.kh {
        let rows = geo.rows(tap: ki)
        for kj in 0..<geo.kw {
            let cols = geo.columns(tap: kj)
            if cols.isEmpty { continue }
            for oy in rows {
                body(ki, kj, oy, cols, (oy * geo.strideH - geo.top + ki * geo.dilationH) * geo.w + kj * geo.dilationW - geo.left)
            }
        }
    }
}

/// Depthwise y = conv(x, w): output channel co reads input channel co / (Cout / Cin); y is fully written.
func depthwiseForward(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                      batch: Int, cin: Int, cout: Int, _ geo: ConvGeometry) {
    let multiplier = cout / cin, l = geo.outPlane
    parallelChunks(batch * cout, grain: Swift.max(1, (1 << 14) / Swift.max(geo.taps * l, 1))) { range in
        let phases = PhasedPlane(geo), wide = UnsafeMutablePointer<Float>.allocate(capacity: phases.span)
        defer { phases.deallocate(); wide.deallocate() }
        var filled = -1
        for p in range {
            let co = p % cout, source = p / cout * cin + co / multiplier
            if source != filled {
                phases.fill(x + source * geo.inPlane)
                filled = source
            }
            phases.convolve(w + co * geo.taps, into: y + p * l, wide: wide)
        }
    }
}

/// One input plane of a convolution window, copied zero-padded and split into `strideW` column phases so that
/// every tap of a row of outputs reads contiguous floats: phase r, row i, column j holds padded element
/// (i, j · strideW + r). Each output is then summed over its taps in registers and written once.
private struct PhasedPlane {
    let geo: ConvGeometry
    let rows, width: Int
    let buffer: UnsafeMutablePointer<Float>
    /// Where tap t of output row 0 starts in `buffer`.
    let offsets: UnsafeMutablePointer<Int>

    init(_ geo: ConvGeometry) {
        self.geo = geo
        let sw = geo.strideW
        rows = (geo.oh - 1) * geo.strideH + (geo.kh - 1) * geo.dilationH + 1
        width = geo.ow + (geo.kw - 1) * geo.dilationW / sw
        buffer = .allocate(capacity: sw * rows * width)
        offsets = .allocate(capacity: geo.taps)
        for ki in 0..<geo.kh {
            for kj in 0..<geo.kw {
                let column = kj * geo.dilationW
                offsets[ki * geo.kw + kj] = ((column % sw) * rows + ki * geo.dilationH) * width + column / sw
            }
        }
    }

    func deallocate() {
        buffer.deallocate()
        offsets.deallocate()
    }

    var rowStep: Int { geo.strideH * width }

    func fill(_ plane: UnsafePointer<Float>) {
        let sw = geo.strideW
        for r in 0..<sw {
            for i in 0..<rows {
                let dst = buffer + (r * rows + i) * width, yIn = i - geo.top
                guard yIn >= 0 && yIn < geo.h else { dst.update(repeating: 0, count: width); continue }
                let src = plane + yIn * geo.w + r - geo.left
                // Columns j whose input j · strideW + r − left lies inside the plane.
                let first = Swift.min(width, Swift.max(0, (geo.left - r + sw - 1) / sw))
                let last = geo.w - 1 + geo.left - r
                let end = last < 0 ? first : Swift.max(first, Swift.min(width, last / sw + 1))
                dst.update(repeating: 0, count: first)
                if sw == 1 {
                    (dst + first).update(from: src + first, count: end - first)
                } else {
                    for j in first..<end { dst[j] = src[j * sw] }
                }
                (dst + end).update(repeating: 0, count: width - end)
            }
        }
    }

    /// One output plane: out[oy, ox] = Σ_t k[t] · (tap t of output (oy, ox)). With stride 1, output (oy, ox) sits at
    /// oy · width + ox of a flat run, so each tap is one long multiply-add over the whole plane (the few columns
    /// between rows are computed and dropped) into `wide`, which must hold `span` floats.
    func convolve(_ k: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>, wide: UnsafeMutablePointer<Float>) {
        let (ow, taps, step) = (geo.ow, geo.taps, rowStep)
        if geo.strideW == 1 && geo.strideH == 1 {
            multiplyAdd(k, taps: taps, offsets: offsets, buffer, count: span, into: wide)
            for oy in 0..<geo.oh { (out + oy * ow).update(from: wide + oy * step, count: ow) }
            return
        }
        for oy in 0..<geo.oh {
            multiplyAdd(k, taps: taps, offsets: offsets, buffer + oy * step, count: ow, into: out + oy * ow)
        }
    }

    /// Flat positions a stride-1 plane's outputs span (see `convolve`).
    var span: Int { (geo.oh - 1) * rowStep + geo.ow }

    /// sums[t] += Σ_{oy, ox} g[oy, ox] · (tap t of output (oy, ox)): one plane's share of the weight gradient.
    /// With stride 1, g is first laid out as `convolve` lays out outputs (zeros between rows, in `wide`, which must
    /// hold `span` floats), so each tap is one long dot product.
    func correlate(_ g: UnsafePointer<Float>, into sums: UnsafeMutablePointer<Float>, wide: UnsafeMutablePointer<Float>) {
        let ow = geo.ow, step = rowStep
        if geo.strideW == 1 && geo.strideH == 1 {
            for oy in 0..<geo.oh {
                (wide + oy * step).update(from: g + oy * ow, count: ow)
                if oy + 1 < geo.oh { (wide + oy * step + ow).update(repeating: 0, count: step - ow) }
            }
            for t in 0..<geo.taps { sums[t] += dot(wide, buffer + offsets[t], span) }
            return
        }
        for oy in 0..<geo.oh {
            let gRow = g + oy * ow, base = buffer + oy * step
            for t in 0..<geo.taps { sums[t] += dot(gRow, base + offsets[t], ow) }
        }
    }
}

/// out[i] = Σ_t k[t] · source[offsets[t] + i] for i in 0..<count, four 16-wide accumulators at a time.
@inline(__always)
private func multiplyAdd(_ k: UnsafePointer<Float>, taps: Int, offsets: UnsafePointer<Int>, _ source: UnsafePointer<Float>,
                         count: Int, into out: UnsafeMutablePointer<Float>) {
    typealias V = SIMD16<Float>
    @inline(__always) func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
    var i = 0
    while i + 64 <= count {
        var (a, b, c, d) = (V(), V(), V(), V())
        for t in 0..<taps {
            let w = V(repeating: k[t]), p = source + offsets[t] + i
            a += w * load(p); b += w * load(p + 16); c += w * load(p + 32); d += w * load(p + 48)
        }
        let o = UnsafeMutableRawPointer(out + i)
        o.storeBytes(of: a, as: V.self); o.storeBytes(of: b, toByteOffset: 64, as: V.self)
        o.storeBytes(of: c, toByteOffset: 128, as: V.self); o.storeBytes(of: d, toByteOffset: 192, as: V.self)
        i += 64
    }
    while i + 16 <= count {
        var a = V()
        for t in 0..<taps { a += k[t] * load(source + offsets[t] + i) }
        UnsafeMutableRawPointer(out + i).storeBytes(of: a, as: V.self)
        i += 16
    }
    while i < count {
        var a: Float = 0
        for t in 0..<taps { a += k[t] * source[offsets[t] + i] }
        out[i] = a
        i += 1
    }
}

/// Dot product of `n` contiguous floats with two 16-wide partial sums.
@inline(__always)
private func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    typealias V = SIMD16<Float>
    var (s, t) = (V(), V())
    var i = 0
    while i + 32 <= n {
        s += UnsafeRawPointer(a + i).loadUnaligned(as: V.self) * UnsafeRawPointer(b + i).loadUnaligned(as: V.self)
        t += UnsafeRawPointer(a + i + 16).loadUnaligned(as: V.self) * UnsafeRawPointer(b + i + 16).loadUnaligned(as: V.self)
        i += 32
    }
    if i + 16 <= n {
        s += UnsafeRawPointer(a + i).loadUnaligned(as: V.self) * UnsafeRawPointer(b + i).loadUnaligned(as: V.self)
        i += 16
    }
    var sum = (s + t).sum()
    while i < n { sum += a[i] * b[i]; i += 1 }
    return sum
}

/// Depthwise dx = convInputGrad(g, w), one input plane per task so no two tasks write the same element; dx must
/// start zeroed (the stride-1 path writes each plane, the general one adds each tap into it).
func depthwiseInputGrad(_ g: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
                        batch: Int, cin: Int, cout: Int, _ geo: ConvGeometry) {
    let multiplier = cout / cin, l = geo.outPlane, sw = geo.strideW
    // Stride 1, one output per input channel: dx is the forward convolution of g, padded by the window's reach
    // minus the forward padding, with the kernel turned by 180°.
    let (reachH, reachW) = ((geo.kh - 1) * geo.dilationH, (geo.kw - 1) * geo.dilationW)
    if multiplier == 1 && geo.strideH == 1 && sw == 1 && geo.top <= reachH && geo.left <= reachW {
        let turned = ConvGeometry(h: geo.oh, w: geo.ow, kh: geo.kh, kw: geo.kw, oh: geo.h, ow: geo.w, strideH: 1,
                                  strideW: 1, dilationH: geo.dilationH, dilationW: geo.dilationW,
                                  top: reachH - geo.top, left: reachW - geo.left, groups: geo.groups)
        parallelChunks(batch * cin, grain: Swift.max(1, (1 << 14) / Swift.max(geo.taps * geo.inPlane, 1))) { range in
            let phases = PhasedPlane(turned), kernel = UnsafeMutablePointer<Float>.allocate(capacity: geo.taps)
            let wide = UnsafeMutablePointer<Float>.allocate(capacity: phases.span)
            defer { phases.deallocate(); kernel.deallocate(); wide.deallocate() }
            for p in range {
                let wk = w + p % cin * geo.taps
                for t in 0..<geo.taps { kernel[t] = wk[geo.taps - 1 - t] }
                phases.fill(g + p * l)
                phases.convolve(kernel, into: dx + p * geo.inPlane, wide: wide)
            }
        }
        return
    }
    parallelChunks(batch * cin, grain: Swift.max(1, (1 << 14) / Swift.max(geo.taps * l * multiplier, 1))) { range in
        for p in range {
            let dst = dx + p * geo.inPlane
            for m in 0..<multiplier {
                let co = p % cin * multiplier + m
                let src = g + (p / cin * cout + co) * l, wk = w + co * geo.taps
                forEachTapRow(geo) { ki, kj, oy, cols, offset in
                    let wv = wk[ki * geo.kw + kj], d = dst + offset, s = src + oy * geo.ow
                    if sw == 1 {
                        for ox in cols { d[ox] += wv * s[ox] }
                    } else {
                        for ox in cols { d[ox * sw] += wv * s[ox] }
                    }
                }
            }
        }
    }
}

/// Depthwise dw = convWeightGrad(x, g), one output channel per task.
func depthwiseWeightGrad(_ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ dw: UnsafeMutablePointer<Float>,
                         batch: Int, cin: Int, cout: Int, _ geo: ConvGeometry) {
    let multiplier = cout / cin, l = geo.outPlane
    parallelChunks(cout, grain: Swift.max(1, (1 << 14) / Swift.max(geo.taps * l * batch, 1))) { range in
        let phases = PhasedPlane(geo), wide = UnsafeMutablePointer<Float>.allocate(capacity: phases.span)
        defer { phases.deallocate(); wide.deallocate() }
        for co in range {
            for n in 0..<batch {
                phases.fill(x + (n * cin + co / multiplier) * geo.inPlane)
                phases.correlate(g + (n * cout + co) * l, into: dw + co * geo.taps, wide: wide)
            }
        }
    }
}
