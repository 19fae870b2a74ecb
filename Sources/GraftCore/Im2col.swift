import CBLAS

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
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
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
                        dst.update(repeating: 0, count: cols.lowerBound)
                        if sw == 1 {
                            (dst + cols.lowerBound).update(from: src + cols.lowerBound, count: cols.count)
                        } else {
                            for ox in cols { dst[ox] = src[ox * sw] }
                        }
                        (dst + cols.upperBound).update(repeating: 0, count: ow - cols.upperBound)
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
/// Each input plane is first copied zero-padded and split into `strideW` column phases, so that every tap of a
/// row of outputs reads contiguous floats; each output is then summed over its taps in registers and written once.
func depthwiseForward(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                      batch: Int, cin: Int, cout: Int, _ geo: ConvGeometry) {
    let multiplier = cout / cin, l = geo.outPlane, sw = geo.strideW
    let rows = (geo.oh - 1) * geo.strideH + (geo.kh - 1) * geo.dilationH + 1
    let phaseWidth = geo.ow + (geo.kw - 1) * geo.dilationW / sw
    parallelChunks(batch * cout, grain: Swift.max(1, (1 << 14) / Swift.max(geo.taps * l, 1))) { range in
        let phases = UnsafeMutablePointer<Float>.allocate(capacity: sw * rows * phaseWidth)
        let offsets = UnsafeMutablePointer<Int>.allocate(capacity: geo.taps)
        defer { phases.deallocate(); offsets.deallocate() }
        for ki in 0..<geo.kh {
            for kj in 0..<geo.kw {
                let column = kj * geo.dilationW
                offsets[ki * geo.kw + kj] = ((column % sw) * rows + ki * geo.dilationH) * phaseWidth + column / sw
            }
        }
        var filled = -1
        for p in range {
            let co = p % cout, source = p / cout * cin + co / multiplier
            if source != filled {
                fillPhases(x + source * geo.inPlane, geo, rows: rows, width: phaseWidth, into: phases)
                filled = source
            }
            depthwisePlane(phases, w + co * geo.taps, y + p * l, geo, offsets: offsets, rowStep: geo.strideH * phaseWidth)
        }
    }
}

/// Copies one input plane, zero-padded as `geo` pads it, into `strideW` phases [strideW, rows, width]: phase r,
/// row i, column j holds padded element (i, j · strideW + r).
private func fillPhases(_ plane: UnsafePointer<Float>, _ geo: ConvGeometry, rows: Int, width: Int,
                        into phases: UnsafeMutablePointer<Float>) {
    let sw = geo.strideW
    for r in 0..<sw {
        for i in 0..<rows {
            let dst = phases + (r * rows + i) * width, yIn = i - geo.top
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

/// One output plane of a depthwise convolution from the phases of its input plane; `offsets[t]` is where tap t
/// of output row 0 starts in the phases.
@inline(__always)
private func depthwisePlane(_ phases: UnsafePointer<Float>, _ k: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                            _ geo: ConvGeometry, offsets: UnsafePointer<Int>, rowStep: Int) {
    let (ow, taps) = (geo.ow, geo.taps)
    for oy in 0..<geo.oh {
        let o = out + oy * ow, base = phases + oy * rowStep
        var ox = 0
        while ox + 16 <= ow {
            var acc = SIMD16<Float>()
            for t in 0..<taps {
                acc += k[t] * UnsafeRawPointer(base + offsets[t] + ox).loadUnaligned(as: SIMD16<Float>.self)
            }
            UnsafeMutableRawPointer(o + ox).storeBytes(of: acc, as: SIMD16<Float>.self)
            ox += 16
        }
        while ox < ow {
            var acc: Float = 0
            for t in 0..<taps { acc += k[t] * base[offsets[t] + ox] }
            o[ox] = acc
            ox += 1
        }
    }
}

/// Depthwise dx += convInputGrad(g, w), one input plane per task so no two tasks write the same element.
func depthwiseInputGrad(_ g: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>,
                        batch: Int, cin: Int, cout: Int, _ geo: ConvGeometry) {
    let multiplier = cout / cin, l = geo.outPlane, sw = geo.strideW
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
    let multiplier = cout / cin, l = geo.outPlane, sw = geo.strideW
    parallelChunks(cout, grain: Swift.max(1, (1 << 14) / Swift.max(geo.taps * l * batch, 1))) { range in
        for co in range {
            let wk = dw + co * geo.taps
            for n in 0..<batch {
                let src = x + (n * cin + co / multiplier) * geo.inPlane, gp = g + (n * cout + co) * l
                forEachTapRow(geo) { ki, kj, oy, cols, offset in
                    let s = src + offset, d = gp + oy * geo.ow
                    var acc: Float = 0
                    if sw == 1 {
                        acc = dot(d + cols.lowerBound, s + cols.lowerBound, cols.count)
                    } else {
                        for ox in cols { acc += d[ox] * s[ox * sw] }
                    }
                    wk[ki * geo.kw + kj] += acc
                }
            }
        }
    }
}

/// Dot product of `n` contiguous floats with eight partial sums, so the loop vectorises.
@inline(__always)
private func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ n: Int) -> Float {
    var acc = SIMD8<Float>()
    var i = 0
    while i + 8 <= n {
        acc += UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)
            * UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self)
        i += 8
    }
    var s = acc.sum()
    while i < n { s += a[i] * b[i]; i += 1 }
    return s
}
