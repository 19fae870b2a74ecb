/// A convolution on a small map, split by which taps land inside the input. On a 2×2 map padded by 1, each output
/// position sees only 4 of a 3×3 kernel's 9 taps, and on a 1×1 map only the centre; im2col would multiply the
/// other taps by zeros (a third of ResNet-18's arithmetic with ImageNet's stem on 32 px images, whose last stages
/// run on 2×2 and 1×1 maps). Output rows that see the same kernel rows form a segment, and likewise for columns;
/// each pair of segments is a class, and each of its taps one GEMM: the tap's weight [Cout, Cin] times the input
/// under it [Cin, images · positions], summed over the class's taps.
struct TapClasses {
    /// Output rows and the kernel rows they all see (likewise for columns).
    struct Segment: Equatable {
        let outputs: Range<Int>
        let taps: Range<Int>
    }

    let geo: ConvGeometry
    let cin, cout: Int
    let rowSegments, columnSegments: [Segment]

    /// The split for `geo`, or nil where it would not pay: grouped convolutions, and maps where the taps im2col
    /// would multiply by zero are under a quarter of its arithmetic.
    init?(cin: Int, cout: Int, _ geo: ConvGeometry) {
        guard geo.groups == 1 && geo.taps > 1 else { return nil }
        let rows = TapClasses.segments(outputs: geo.oh, kernel: geo.kh, geo.rows(tap:))
        let columns = TapClasses.segments(outputs: geo.ow, kernel: geo.kw, geo.columns(tap:))
        func used(_ segments: [Segment]) -> Int { segments.reduce(0) { $0 + $1.outputs.count * $1.taps.count } }
        guard 4 * used(rows) * used(columns) < 3 * geo.outPlane * geo.taps else { return nil }
        (self.geo, self.cin, self.cout, rowSegments, columnSegments) = (geo, cin, cout, rows, columns)
    }

    /// Consecutive outputs that see the same taps, from each tap's range of outputs (`valid`).
    private static func segments(outputs: Int, kernel: Int, _ valid: (Int) -> Range<Int>) -> [Segment] {
        let ranges = (0..<kernel).map(valid)
        var segments: [Segment] = []
        for o in 0..<outputs {
            // A tap's outputs move down as the tap moves right, so the taps an output sees are contiguous.
            let seen = (0..<kernel).filter { ranges[$0].contains(o) }
            let taps = (seen.first ?? 0)..<((seen.last ?? -1) + 1)
            if let last = segments.last, last.taps == taps {
                segments[segments.count - 1] = Segment(outputs: last.outputs.lowerBound..<(o + 1), taps: taps)
            } else {
                segments.append(Segment(outputs: o..<(o + 1), taps: taps))
            }
        }
        return segments
    }

    /// Every class (a row segment with a column segment), lowered.
    private var classes: [Lowered] {
        rowSegments.flatMap { r in columnSegments.map { Lowered(self, r, $0) } }
    }

    /// The kernel taps some class reads.
    private var usedTaps: [Int] {
        let rows = Set(rowSegments.flatMap { Array($0.taps) }).sorted()
        let columns = Set(columnSegments.flatMap { Array($0.taps) }).sorted()
        return rows.flatMap { ki in columns.map { ki * geo.kw + $0 } }
    }

    /// y = conv(x, w), fully written. With several threads each takes a share of the images through every class,
    /// with single-threaded GEMMs: the classes' GEMMs and copies are too small to split well one by one.
    func forward(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, batch: Int) {
        let weight = tapMajor(w)
        let (xs, ys) = (UncheckedSendable(x), UncheckedSendable(y))
        shareImages(batch) { first, count, parallel in
            forward(xs.value + first * cin * geo.inPlane, weight.pointer, ys.value + first * cout * geo.outPlane,
                    batch: count, parallel: parallel)
        }
    }

    private func forward(_ x: UnsafePointer<Float>, _ weight: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>,
                         batch: Int, parallel: Bool) {
        for c in classes {
            let width = batch * c.positions
            guard !c.taps.isEmpty else {
                c.moveOutputs(batch: batch, parallel: parallel) { t, _ in y[t] = 0 }
                continue
            }
            let columns = c.gatherColumns(x, batch: batch, parallel: parallel), out = Storage(count: cout * width)
            for (i, tap) in c.taps.enumerated() {
                sgemm(false, false, cout, width, cin, weight + tap * cout * cin, columns.pointer + i * cin * width,
                      beta: i == 0 ? 0 : 1, out.pointer)
            }
            c.moveOutputs(batch: batch, parallel: parallel) { t, m in y[t] = out.pointer[m] }
        }
    }

    /// dx += ∂⟨conv(x, w), g⟩/∂x.
    func inputGradient(_ g: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ dx: UnsafeMutablePointer<Float>, batch: Int) {
        let weight = tapMajor(w)
        for c in classes where !c.taps.isEmpty {
            let width = batch * c.positions
            let gradient = c.gatherOutput(g, batch: batch, parallel: true), columns = Storage(count: c.taps.count * cin * width)
            for (i, tap) in c.taps.enumerated() {
                sgemm(true, false, cin, width, cout, weight.pointer + tap * cout * cin, gradient.pointer, beta: 0,
                      columns.pointer + i * cin * width)
            }
            c.addColumns(columns.pointer, into: dx, batch: batch, parallel: true)
        }
    }

    /// dw += ∂⟨conv(x, w), g⟩/∂w.
    func weightGradient(_ x: UnsafePointer<Float>, _ g: UnsafePointer<Float>, _ dw: UnsafeMutablePointer<Float>, batch: Int) {
        let sums = Storage(repeating: 0, count: geo.taps * cout * cin)
        for c in classes where !c.taps.isEmpty {
            let width = batch * c.positions
            let gradient = c.gatherOutput(g, batch: batch, parallel: true), columns = c.gatherColumns(x, batch: batch, parallel: true)
            for (i, tap) in c.taps.enumerated() {
                sgemm(false, true, cout, cin, width, gradient.pointer, columns.pointer + i * cin * width, beta: 1,
                      sums.pointer + tap * cout * cin)
            }
        }
        let (taps, plane, used) = (geo.taps, cout * cin, usedTaps)
        parallelChunks(plane, grain: 4096) { range in
            for oc in range {
                for t in used { dw[oc * taps + t] += sums.pointer[t * plane + oc] }
            }
        }
    }

    /// The weight [Cout, Cin, kh, kw] tap-major, [kh · kw, Cout, Cin]: tap t's matrix is contiguous. Only the taps
    /// some class reads are written.
    private func tapMajor(_ w: UnsafePointer<Float>) -> Storage {
        let out = Storage(count: geo.taps * cout * cin), (taps, plane, used) = (geo.taps, cout * cin, usedTaps)
        parallelChunks(plane, grain: 4096) { range in
            for oc in range {
                for t in used { out.pointer[t * plane + oc] = w[oc * taps + t] }
            }
        }
        return out
    }

    private func sgemm(_ transA: Bool, _ transB: Bool, _ m: Int, _ n: Int, _ k: Int, _ a: UnsafePointer<Float>,
                       _ b: UnsafePointer<Float>, beta: Float, _ c: UnsafeMutablePointer<Float>) {
        GraftCore.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, a, lda: transA ? m : k, b,
                        ldb: transB ? k : n, beta: beta, c, ldc: n)
    }
}

/// One class: the kernel taps its outputs all see, and for each its input offsets. Its columns are tap-major,
/// [taps, Cin, batch · positions] (column (image, position)); its outputs [Cout, batch · positions].
private struct Lowered {
    let cin, cout, inPlane, outPlane: Int
    /// Kernel taps (ki · kw + kj) the class reads.
    let taps: [Int]
    /// For each tap and position, the input's offset within a channel plane: sources[t · positions + p].
    let sources: [Int]
    /// For each position, the output's offset within a channel plane.
    let targets: [Int]

    init(_ split: TapClasses, _ r: TapClasses.Segment, _ c: TapClasses.Segment) {
        let geo = split.geo
        (cin, cout, inPlane, outPlane) = (split.cin, split.cout, geo.inPlane, geo.outPlane)
        targets = r.outputs.flatMap { oy in c.outputs.map { oy * geo.ow + $0 } }
        taps = r.taps.flatMap { ki in c.taps.map { ki * geo.kw + $0 } }
        sources = r.taps.flatMap { ki in
            c.taps.flatMap { kj in
                r.outputs.flatMap { oy in
                    c.outputs.map { ox in
                        (oy * geo.strideH - geo.top + ki * geo.dilationH) * geo.w
                            + ox * geo.strideW - geo.left + kj * geo.dilationW
                    }
                }
            }
        }
    }

    var positions: Int { targets.count }

    /// The input under each tap, [taps, Cin, batch · positions].
    func gatherColumns(_ x: UnsafePointer<Float>, batch: Int, parallel: Bool) -> Storage {
        let out = Storage(count: taps.count * cin * batch * positions)
        forEachColumnRow(batch: batch, parallel: parallel) { column, plane, offsets in
            for p in offsets.indices { out.pointer[column + p] = x[plane + offsets[p]] }
        }
        return out
    }

    /// dx[n, c, under tap t] += columns[t, c, n · positions + p].
    func addColumns(_ columns: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>, batch: Int, parallel: Bool) {
        forEachColumnRow(batch: batch, parallel: parallel) { column, plane, offsets in
            for p in offsets.indices { dx[plane + offsets[p]] += columns[column + p] }
        }
    }

    /// Calls body(column matrix index, input plane index, the tap's offsets) for every tap, channel and image.
    /// Each thread takes whole channels, so additions to one input plane never race.
    @inline(__always)
    private func forEachColumnRow(batch: Int, parallel: Bool, _ body: (Int, Int, UnsafeBufferPointer<Int>) -> Void) {
        let (count, cin, positions, plane) = (taps.count, cin, positions, inPlane), width = batch * positions
        sources.withUnsafeBufferPointer { sources in
            chunks(cin, grain: Swift.max(1, 4096 / Swift.max(count * width, 1)), parallel: parallel) { range in
                for c in range {
                    for t in 0..<count {
                        let offsets = UnsafeBufferPointer(rebasing: sources[(t * positions)..<((t + 1) * positions)])
                        for n in 0..<batch {
                            body((t * cin + c) * width + n * positions, (n * cin + c) * plane, offsets)
                        }
                    }
                }
            }
        }
    }

    /// The class's positions of an output-shaped tensor [N, Cout, oh, ow], as [Cout, batch · positions].
    func gatherOutput(_ g: UnsafePointer<Float>, batch: Int, parallel: Bool) -> Storage {
        let out = Storage(count: cout * batch * positions)
        moveOutputs(batch: batch, parallel: parallel) { tensor, matrix in out.pointer[matrix] = g[tensor] }
        return out
    }

    /// Calls body(index in [N, Cout, oh, ow], index in [Cout, batch · positions]) for each of the class's outputs,
    /// output channels shared out across threads.
    @inline(__always)
    func moveOutputs(batch: Int, parallel: Bool, _ body: (Int, Int) -> Void) {
        let (cout, plane, width, positions) = (cout, outPlane, batch * positions, positions)
        targets.withUnsafeBufferPointer { targets in
            chunks(cout, grain: Swift.max(1, 4096 / Swift.max(width, 1)), parallel: parallel) { range in
                for o in range {
                    for n in 0..<batch {
                        let base = (n * cout + o) * plane, row = o * width + n * positions
                        for p in 0..<positions { body(base + targets[p], row + p) }
                    }
                }
            }
        }
    }
}
