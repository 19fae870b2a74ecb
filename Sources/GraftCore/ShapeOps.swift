/// Shape ops. Tensors are always contiguous: `reshaped` shares storage, every other op here copies.
extension Tensor {
    /// The same elements in a new shape; one dimension may be -1 (inferred).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var target = newShape
        if let hole = target.firstIndex(of: -1) {
            let known = target.enumerated().filter { $0.offset != hole }.map(\.element).product
            require(known > 0 && count % known == 0, "reshape: cannot infer -1 in \(newShape) for shape \(shape)")
            target[hole] = count / known
        }
        require(target.allSatisfy { $0 >= 0 } && target.product == count,
                     "reshape: shape \(shape) (\(count) elements) cannot become \(newShape)")
        if target == shape { return self }
        let source = shape
        return Tensor.result("reshape", target, storage, [self]) { g, _ in [g.reshaped(source)] }
    }

    /// Flattens axes `start...end` into one.
    public func flattened(from start: Int = 0, to end: Int = -1) -> Tensor {
        let s = axis(start, op: "flatten"), e = axis(end, op: "flatten")
        guard s < e else { return self }
        return reshaped(Array(shape[..<s]) + [shape[s...e].reduce(1, *)] + Array(shape[(e + 1)...]))
    }

    public func unsqueezed(_ a: Int) -> Tensor {
        let ax = a < 0 ? a + rank + 1 : a
        require(ax >= 0 && ax <= rank, "unsqueeze: axis \(a) out of range for shape \(shape)")
        var s = shape
        s.insert(1, at: ax)
        return reshaped(s)
    }

    public func squeezed(_ a: Int) -> Tensor {
        let ax = axis(a, op: "squeeze")
        require(shape[ax] == 1, "squeeze: axis \(a) of shape \(shape) is not 1")
        var s = shape
        s.remove(at: ax)
        return reshaped(s)
    }

    /// Reorders axes: output axis i is input axis `order[i]` (`torch.permute`).
    public func permuted(_ order: [Int]) -> Tensor {
        require(order.sorted() == Array(0..<rank), "permute: \(order) is not a permutation of the axes of \(shape)")
        if order == Array(0..<rank) { return self }
        let outShape = order.map { shape[$0] }
        let src = shape.strides
        let out = Storage(count: count)
        let inStrides = order.map { src[$0] }
        let n = outShape.last!, s = inStrides.last!
        let rows = count / Swift.max(n, 1)
        let px = pointer, po = out.pointer
        parallelChunks(rows, grain: Swift.max(1, (1 << 15) / Swift.max(n, 1))) { range in
            for row in range {
                var rem = row, off = 0
                for d in stride(from: outShape.count - 2, through: 0, by: -1) {
                    off += (rem % outShape[d]) * inStrides[d]
                    rem /= outShape[d]
                }
                let x = px + off, y = po + row * n
                if s == 1 { y.update(from: x, count: n) } else { for i in 0..<n { y[i] = x[i * s] } }
            }
        }
        var inverse = [Int](repeating: 0, count: rank)
        for (i, o) in order.enumerated() { inverse[o] = i }
        return Tensor.result("permute", outShape, out, [self]) { g, _ in [g.permuted(inverse)] }
    }

    public func transposed(_ a: Int = -2, _ b: Int = -1) -> Tensor {
        var order = Array(0..<rank)
        order.swapAt(axis(a, op: "transpose"), axis(b, op: "transpose"))
        return permuted(order)
    }

    /// Elements `range` along `axis`.
    public func slice(axis a: Int, _ range: Range<Int>) -> Tensor {
        let ax = axis(a, op: "slice")
        require(range.lowerBound >= 0 && range.upperBound <= shape[ax],
                     "slice: range \(range) out of bounds for axis \(a) of shape \(shape)")
        var widths = [(Int, Int)](repeating: (0, 0), count: rank)
        widths[ax] = (-range.lowerBound, range.upperBound - shape[ax])
        return padded(widths)
    }

    /// Pads (or, with negative widths, crops) each axis by (before, after) elements filled with `value`.
    public func padded(_ widths: [(Int, Int)], value: Float = 0) -> Tensor {
        require(widths.count == rank, "pad: \(widths.count) (before, after) pairs for shape \(shape)")
        let outShape = shape.indices.map { shape[$0] + widths[$0].0 + widths[$0].1 }
        require(outShape.allSatisfy { $0 >= 0 }, "pad: widths \(widths) crop shape \(shape) below zero")
        let out = Storage(repeating: value, count: outShape.product)
        // Copy the overlap of input and output, row by row along the last axis.
        let lo = shape.indices.map { Swift.max(0, -widths[$0].0) }
        let span = shape.indices.map { Swift.max(0, Swift.min(shape[$0], outShape[$0] - widths[$0].0) - lo[$0]) }
        if span.product > 0 {
            let inS = shape.strides, outS = outShape.strides, n = span[rank - 1]
            let rows = span.dropLast().reduce(1, *)
            let px = pointer, po = out.pointer
            for row in 0..<rows {
                var rem = row, xi = lo[rank - 1], yi = lo[rank - 1] + widths[rank - 1].0
                for d in stride(from: rank - 2, through: 0, by: -1) {
                    let k = rem % span[d] + lo[d]
                    rem /= span[d]
                    xi += k * inS[d]
                    yi += (k + widths[d].0) * outS[d]
                }
                (po + yi).update(from: px + xi, count: n)
            }
        }
        return Tensor.result("pad", outShape, out, [self]) { g, _ in [g.padded(widths.map { (-$0.0, -$0.1) })] }
    }

    /// Joins tensors along an existing axis.
    public static func concat(_ tensors: [Tensor], axis a: Int) -> Tensor {
        require(!tensors.isEmpty, "concat: no tensors")
        let first = tensors[0], ax = first.axis(a, op: "concat")
        for t in tensors {
            require(t.rank == first.rank && t.shape.indices.allSatisfy { $0 == ax || t.shape[$0] == first.shape[$0] },
                         "concat: shapes \(first.shape) and \(t.shape) differ off axis \(a)")
        }
        var outShape = first.shape
        outShape[ax] = tensors.map { $0.shape[ax] }.reduce(0, +)
        let outer = first.shape[..<ax].reduce(1, *)
        let out = Storage(count: outShape.product)
        let rowLength = outShape[ax...].reduce(1, *)
        var offset = 0
        for t in tensors {
            let block = t.shape[ax...].reduce(1, *)
            for o in 0..<outer { (out.pointer + o * rowLength + offset).update(from: t.pointer + o * block, count: block) }
            offset += block
        }
        let sizes = tensors.map { $0.shape[ax] }
        return result("concat", outShape, out, tensors) { g, needs in
            var start = 0
            return sizes.indices.map { i in
                defer { start += sizes[i] }
                return needs[i] ? g.slice(axis: ax, start..<(start + sizes[i])) : nil
            }
        }
    }

    /// Joins same-shaped tensors along a new axis.
    public static func stack(_ tensors: [Tensor], axis a: Int = 0) -> Tensor {
        require(!tensors.isEmpty, "stack: no tensors")
        for t in tensors { require(t.shape == tensors[0].shape, "stack: shapes \(tensors[0].shape) and \(t.shape) differ") }
        return concat(tensors.map { $0.unsqueezed(a) }, axis: a)
    }

    /// Splits along `axis` into pieces of the given sizes.
    public func split(_ sizes: [Int], axis a: Int) -> [Tensor] {
        let ax = axis(a, op: "split")
        require(sizes.allSatisfy { $0 >= 0 } && sizes.reduce(0, +) == shape[ax],
                     "split: sizes \(sizes) do not add up to \(shape[ax]) along axis \(a) of shape \(shape)")
        var start = 0
        return sizes.map { n in
            defer { start += n }
            return slice(axis: ax, start..<(start + n))
        }
    }
}
