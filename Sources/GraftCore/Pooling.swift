/// Where the windows of a pooling op fall along one spatial axis: output o reads inputs start[o] + k · dilation for
/// the taps k in taps[o] (those inside the input), and an average divides by divisor[o] along this axis.
struct PoolAxis: Sendable {
    let size: Int
    /// Windows start `stride` inputs apart; 0 for adaptive windows, which start irregularly.
    let stride: Int
    let dilation: Int
    let start: [Int]
    let taps: [Range<Int>]
    let divisor: [Float]

    var count: Int { start.count }

    /// The input position of each output's first tap inside the input.
    var first: [Int] { zip(start, taps).map { $0 + $1.lowerBound * dilation } }

    /// The outputs whose window reads tap `k` inside the input: a contiguous run, as the windows slide.
    func outputs(reading k: Int) -> Range<Int> {
        let hits = taps.indices.filter { taps[$0].contains(k) }
        return (hits.first ?? 0)..<((hits.last ?? -1) + 1)
    }

    /// Sliding windows as PyTorch's pooling places them; the divisor counts padding only with `countPadding`.
    init(size: Int, kernel: Int, stride: Int, dilation: Int, before: Int, after: Int, ceilMode: Bool, countPadding: Bool) {
        self.size = size
        self.stride = stride
        self.dilation = dilation
        let n = windowCount(size, kernel: kernel, stride: stride, dilation: dilation, before: before, after: after,
                            ceilMode: ceilMode)
        start = (0..<n).map { $0 * stride - before }
        taps = start.map { s in
            let lo = s >= 0 ? 0 : (-s + dilation - 1) / dilation
            let hi = s >= size ? 0 : Swift.min(kernel, (size - 1 - s) / dilation + 1)
            return lo..<Swift.max(lo, hi)
        }
        divisor = zip(start, taps).map { s, t in
            Float(countPadding ? Swift.min(s + kernel, size + after) - s : t.count)
        }
    }

    /// PyTorch's adaptive windows: output o averages inputs floor(o · size / n) ..< ceil((o + 1) · size / n).
    init(size: Int, adaptive n: Int) {
        self.size = size
        stride = 0
        dilation = 1
        start = (0..<n).map { $0 * size / n }
        taps = (0..<n).map { o in 0..<(((o + 1) * size + n - 1) / n - o * size / n) }
        divisor = taps.map { Float($0.count) }
    }
}

extension Tensor {
    /// Maximum over each window of x [N, C, H, W], the padding counting as −∞, as
    /// `torch.nn.functional.max_pool2d` (the stride defaults to the kernel). The gradient goes to the window's
    /// first maximal element.
    public func maxPool2d(kernel: (Int, Int), stride: (Int, Int)? = nil, padding: Padding = .valid,
                          dilation: (Int, Int) = (1, 1), ceilMode: Bool = false) -> Tensor {
        let (rows, cols) = poolAxes("maxPool2d", kernel: kernel, stride: stride ?? kernel, padding: padding,
                                    dilation: dilation, ceilMode: ceilMode, countPadding: false)
        for (axis, name) in [(rows, "row"), (cols, "column")] where axis.taps.contains(where: \.isEmpty) {
            fatalError("maxPool2d: a \(name) window of input \(shape) reads no input "
                                + "(kernel \(kernel), dilation \(dilation), padding \(padding))")
        }
        let planes = shape[0] * shape[1], (oh, ow) = (rows.count, cols.count), (h, w) = (shape[2], shape[3])
        let firstColumn = cols.first, runs = (0..<kernel.1).map { cols.outputs(reading: $0) }
        let out = Storage(count: planes * oh * ow)
        let px = pointer, po = out.pointer, bounds = UnsafePointer(px)..<UnsafePointer(px + count)
        let grain = Swift.max(1, (1 << 14) / Swift.max(oh * ow * kernel.0 * kernel.1, 1))
        /// Every window's maximum and, given `positions`, the input offset it came from.
        func pool(recordingInto positions: UnsafeMutablePointer<Int>?) {
            parallelChunks(planes, grain: grain) { range in
                let at = positions.map { _ in UnsafeMutablePointer<Int32>.allocate(capacity: ow) }
                defer { at?.deallocate() }
                for p in range {
                    for oy in 0..<oh {
                        let best = po + (p * oh + oy) * ow
                        best.update(repeating: -.infinity, count: ow)
                        if let at {
                            let top = (rows.start[oy] + rows.taps[oy].lowerBound * rows.dilation) * w
                            for ox in 0..<ow { at[ox] = Int32(top + firstColumn[ox]) }
                        }
                        for ki in rows.taps[oy] {
                            foldMaxima(px + p * h * w, row: (rows.start[oy] + ki * rows.dilation) * w, cols, runs, best, at,
                                       bounds: bounds)
                        }
                        if let at, let positions {
                            let indices = positions + (p * oh + oy) * ow
                            for ox in 0..<ow { indices[ox] = Int(at[ox]) }
                        }
                    }
                }
            }
        }
        guard GradMode.isEnabled && requiresGrad else {
            // Nothing will ask where each maximum came from: the maxima alone.
            pool(recordingInto: nil)
            return Tensor(shape: [shape[0], shape[1], oh, ow], storage: out)
        }
        let positions = [Int](unsafeUninitializedCapacity: out.count) { buffer, initialized in
            pool(recordingInto: buffer.baseAddress!)
            initialized = out.count
        }
        let index = Indices(positions, shape: [shape[0], shape[1], oh * ow])
        let flat = [shape[0], shape[1], shape[2] * w], source = shape
        return Tensor.result("max_pool2d", [shape[0], shape[1], oh, ow], out, [self]) { g, _ in
            [g.reshaped(index.shape).scatterAdd(axis: 2, index, shape: flat).reshaped(source)]
        }
    }

    /// Mean over each window of x [N, C, H, W], as `torch.nn.functional.avg_pool2d` (the stride defaults to the
    /// kernel); `countIncludePad: false` divides by the inputs actually covered, as TensorFlow's "SAME" pooling does.
    public func avgPool2d(kernel: (Int, Int), stride: (Int, Int)? = nil, padding: Padding = .valid,
                          ceilMode: Bool = false, countIncludePad: Bool = true) -> Tensor {
        let (rows, cols) = poolAxes("avgPool2d", kernel: kernel, stride: stride ?? kernel, padding: padding,
                                    dilation: (1, 1), ceilMode: ceilMode, countPadding: countIncludePad)
        return Tensor.averagePool(self, rows, cols)
    }

    /// Mean over PyTorch's adaptive windows, giving exactly `outputSize` positions (`adaptive_avg_pool2d`);
    /// (1, 1) is global average pooling.
    public func adaptiveAvgPool2d(_ outputSize: (Int, Int)) -> Tensor {
        require(rank == 4, "adaptiveAvgPool2d: input \(shape) is not NCHW (rank 4)")
        require(outputSize.0 > 0 && outputSize.1 > 0 && shape[2] > 0 && shape[3] > 0,
                     "adaptiveAvgPool2d: cannot pool input \(shape) to \(outputSize)")
        return Tensor.averagePool(self, PoolAxis(size: shape[2], adaptive: outputSize.0),
                                  PoolAxis(size: shape[3], adaptive: outputSize.1))
    }

    /// Validates a sliding-window pool of this tensor and places its windows.
    private func poolAxes(_ op: String, kernel: (Int, Int), stride: (Int, Int), padding: Padding, dilation: (Int, Int),
                          ceilMode: Bool, countPadding: Bool) -> (PoolAxis, PoolAxis) {
        require(rank == 4, "\(op): input \(shape) is not NCHW (rank 4)")
        require(kernel.0 > 0 && kernel.1 > 0 && stride.0 > 0 && stride.1 > 0 && dilation.0 > 0 && dilation.1 > 0,
                     "\(op): kernel \(kernel), stride \(stride) and dilation \(dilation) must be positive (input \(shape))")
        let pad = padding.edges(size: (shape[2], shape[3]), kernel: kernel, stride: stride, dilation: dilation)
        let half = (((kernel.0 - 1) * dilation.0 + 1) / 2, ((kernel.1 - 1) * dilation.1 + 1) / 2)
        require([pad.top, pad.bottom].allSatisfy { $0 >= 0 && $0 <= half.0 }
                     && [pad.left, pad.right].allSatisfy { $0 >= 0 && $0 <= half.1 },
                     "\(op): padding \(pad) must lie within half the kernel \(kernel) (dilation \(dilation), input \(shape))")
        let rows = PoolAxis(size: shape[2], kernel: kernel.0, stride: stride.0, dilation: dilation.0, before: pad.top,
                            after: pad.bottom, ceilMode: ceilMode, countPadding: countPadding)
        let cols = PoolAxis(size: shape[3], kernel: kernel.1, stride: stride.1, dilation: dilation.1, before: pad.left,
                            after: pad.right, ceilMode: ceilMode, countPadding: countPadding)
        require(rows.count > 0 && cols.count > 0, "\(op): input \(shape) padded by \(pad) is smaller than kernel \(kernel)")
        return (rows, cols)
    }

    /// Window means of x (dilation-1 windows); recorded, with `averagePoolAdjoint` as its backward and vice versa.
    /// Windows are rectangles, so the sums run in two passes: along each input row, then down the columns.
    static func averagePool(_ x: Tensor, _ rows: PoolAxis, _ cols: PoolAxis) -> Tensor {
        let planes = x.shape[0] * x.shape[1], (oh, ow) = (rows.count, cols.count), (h, w) = (rows.size, cols.size)
        let firstRow = rows.first, firstColumn = cols.first
        let out = Storage(count: planes * oh * ow)
        let px = x.pointer, po = out.pointer
        parallelChunks(planes, grain: Swift.max(1, (1 << 14) / Swift.max(h * w, 1))) { range in
            let rowSums = UnsafeMutablePointer<Float>.allocate(capacity: h * ow)
            defer { rowSums.deallocate() }
            for p in range {
                let src = px + p * h * w
                for iy in 0..<h {
                    for ox in 0..<ow { rowSums[iy * ow + ox] = windowSum(src + iy * w + firstColumn[ox], cols.taps[ox].count) }
                }
                for oy in 0..<oh {
                    let dst = po + (p * oh + oy) * ow
                    dst.update(repeating: 0, count: ow)
                    for iy in firstRow[oy]..<(firstRow[oy] + rows.taps[oy].count) {
                        let s = rowSums + iy * ow
                        for ox in 0..<ow { dst[ox] += s[ox] }
                    }
                    for ox in 0..<ow { dst[ox] /= rows.divisor[oy] * cols.divisor[ox] }
                }
            }
        }
        return result("avg_pool2d", [x.shape[0], x.shape[1], oh, ow], out, [x]) { g, _ in
            [averagePoolAdjoint(g, rows, cols)]
        }
    }

    /// The adjoint of `averagePool`: each output's gradient, divided by its divisor, spread over its window
    /// (down the rows first, then along them).
    static func averagePoolAdjoint(_ g: Tensor, _ rows: PoolAxis, _ cols: PoolAxis) -> Tensor {
        let planes = g.shape[0] * g.shape[1], (oh, ow) = (rows.count, cols.count), (h, w) = (rows.size, cols.size)
        let firstRow = rows.first, firstColumn = cols.first
        let out = Storage(repeating: 0, count: planes * h * w)
        let pg = g.pointer, po = out.pointer
        parallelChunks(planes, grain: Swift.max(1, (1 << 14) / Swift.max(h * w, 1))) { range in
            let spread = UnsafeMutablePointer<Float>.allocate(capacity: h * ow)
            defer { spread.deallocate() }
            for p in range {
                spread.update(repeating: 0, count: h * ow)
                for oy in 0..<oh {
                    let src = pg + (p * oh + oy) * ow
                    for iy in firstRow[oy]..<(firstRow[oy] + rows.taps[oy].count) {
                        let s = spread + iy * ow
                        for ox in 0..<ow { s[ox] += src[ox] / (rows.divisor[oy] * cols.divisor[ox]) }
                    }
                }
                let dst = po + p * h * w
                for iy in 0..<h {
                    for ox in 0..<ow {
                        let v = spread[iy * ow + ox], d = dst + iy * w + firstColumn[ox]
                        for ix in 0..<cols.taps[ox].count { d[ix] += v }
                    }
                }
            }
        }
        return result("avg_pool2d_adjoint", [g.shape[0], g.shape[1], h, w], out, [g]) { gz, _ in
            [averagePool(gz, rows, cols)]
        }
    }
}

/// Sum of `n` contiguous floats: short windows in a plain loop, long ones (global pooling) vectorised.
@inline(__always)
private func windowSum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
    if n >= 16 { return contiguousSum(p, n) }
    var s: Float = 0
    for i in 0..<n { s += p[i] }
    return s
}

/// Folds the input row starting at offset `row` of `plane` into one output row's running maxima and, given `at`,
/// their positions, tap by tap, eight outputs at a time with selects: a window-by-window loop waits on each
/// comparison, and a branch mispredicts half the time on random data. NaN wins, as in PyTorch. At strides 1 and 2
/// a window of eight is one or two vector loads, reading only inside `bounds`; a run shorter than eight (a tap that
/// reaches the padding for the first outputs) slides its window back over outputs it does not reach, whose lanes
/// are masked to −∞, and outputs folded twice keep their maximum.
@inline(__always)
private func foldMaxima(_ plane: UnsafePointer<Float>, row: Int, _ cols: PoolAxis, _ runs: [Range<Int>],
                        _ best: UnsafeMutablePointer<Float>, _ at: UnsafeMutablePointer<Int32>?,
                        bounds: Range<UnsafePointer<Float>>) {
    let s = cols.stride, lane = SIMD8<Int32>(0, 1, 2, 3, 4, 5, 6, 7), reach = stridedLoadReach(s)
    for (kj, run) in runs.enumerated() where !run.isEmpty {
        // Output ox reads input k0 + (ox − run.lowerBound) · s of this row.
        let k0 = row + kj * cols.dilation + cols.start[run.lowerBound]
        var ox = run.lowerBound
        while ox < run.upperBound {
            let first = Swift.min(ox, run.upperBound - 8), k = k0 + (first - run.lowerBound) * s
            guard first >= 0, plane + k >= bounds.lowerBound, plane + k + reach <= bounds.upperBound else { break }
            var v = loadStrided8(plane + k, stride: s)
            if first < run.lowerBound { v.replace(with: -.infinity, where: .!lanes(first, inside: run)) }
            let b = UnsafeRawPointer(best + first).loadUnaligned(as: SIMD8<Float>.self)
            let take = (v .> b) .| (v .!= v)
            UnsafeMutableRawPointer(best + first).storeBytes(of: b.replacing(with: v, where: take), as: SIMD8<Float>.self)
            if let at {
                let a = UnsafeRawPointer(at + first).loadUnaligned(as: SIMD8<Int32>.self)
                UnsafeMutableRawPointer(at + first).storeBytes(of: a.replacing(with: lane &* Int32(s) &+ Int32(k), where: take),
                                                               as: SIMD8<Int32>.self)
            }
            ox = first + 8
        }
        for ox in ox..<run.upperBound {
            let k = k0 + (ox - run.lowerBound) * s, v = plane[k]
            if v > best[ox] || v.isNaN { best[ox] = v; at?[ox] = Int32(k) }
        }
    }
}
