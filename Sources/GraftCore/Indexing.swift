/// Index-based ops and their adjoints: select/add along an axis, and gather/scatter-add (`torch.gather`).
extension Tensor {
    /// Slices `indices` of `axis`, in order (`torch.index_select`); an embedding lookup is `indexSelect(axis: 0, ids)`.
    public func indexSelect(axis a: Int, _ indices: Indices) -> Tensor {
        let ax = axis(a, op: "indexSelect"), n = shape[ax]
        for i in indices.values where i < 0 || i >= n {
            fatalError("indexSelect: index \(i) out of range for axis \(a) of shape \(shape)")
        }
        let outer = shape[..<ax].reduce(1, *), inner = shape[(ax + 1)...].reduce(1, *), k = indices.values.count
        let out = Storage(count: outer * k * inner)
        let px = pointer, po = out.pointer
        indices.values.withUnsafeBufferPointer { idx in
            for o in 0..<outer {
                for (j, i) in idx.enumerated() { (po + (o * k + j) * inner).update(from: px + (o * n + i) * inner, count: inner) }
            }
        }
        let outShape = Array(shape[..<ax]) + indices.shape + Array(shape[(ax + 1)...])
        let source = shape
        return Tensor.result("index_select", outShape, out, [self]) { g, _ in
            [g.indexAdd(axis: ax, indices, size: source[ax])]
        }
    }

    /// The adjoint of `indexSelect`: a zero tensor with `size` entries along `axis`, into which the slices of
    /// `self` are added at `indices` (repeated indices accumulate).
    public func indexAdd(axis ax: Int, _ indices: Indices, size n: Int) -> Tensor {
        let k = indices.values.count
        let outer = shape[..<ax].reduce(1, *), inner = count / Swift.max(1, outer * k)
        let outShape = Array(shape[..<ax]) + [n] + Array(shape[(ax + indices.shape.count)...])
        let out = Storage(repeating: 0, count: outShape.product)
        let px = pointer, po = out.pointer
        indices.values.withUnsafeBufferPointer { idx in
            for o in 0..<outer {
                for (j, i) in idx.enumerated() {
                    let x = px + (o * k + j) * inner, y = po + (o * n + i) * inner
                    for e in 0..<inner { y[e] += x[e] }
                }
            }
        }
        return Tensor.result("index_add", outShape, out, [self]) { g, _ in [g.indexSelect(axis: ax, indices)] }
    }

    /// out[..., j, ...] = self[..., index[..., j, ...], ...] along `axis`; `index` has this tensor's rank and
    /// matches its shape off the axis (`torch.gather`).
    public func gather(axis a: Int, _ index: Indices) -> Tensor {
        let ax = axis(a, op: "gather")
        require(index.shape.count == rank && shape.indices.allSatisfy { $0 == ax || index.shape[$0] == shape[$0] },
                     "gather: index shape \(index.shape) does not fit shape \(shape) off axis \(a)")
        let outer = shape[..<ax].reduce(1, *), n = shape[ax], inner = shape[(ax + 1)...].reduce(1, *)
        let k = index.shape[ax]
        let out = Storage(count: index.values.count)
        let px = pointer, po = out.pointer
        index.values.withUnsafeBufferPointer { idx in
            for o in 0..<outer {
                for j in 0..<k {
                    for e in 0..<inner {
                        let at = (o * k + j) * inner + e, i = idx[at]
                        require(i >= 0 && i < n, "gather: index \(i) out of range for axis \(a) of shape \(self.shape)")
                        po[at] = px[(o * n + i) * inner + e]
                    }
                }
            }
        }
        let source = shape
        return Tensor.result("gather", index.shape, out, [self]) { g, _ in [g.scatterAdd(axis: ax, index, shape: source)] }
    }

    /// The adjoint of `gather`: zeros of `shape` with this tensor's values added at `index` along `axis`.
    public func scatterAdd(axis ax: Int, _ index: Indices, shape target: [Int]) -> Tensor {
        require(index.shape == shape, "scatterAdd: index shape \(index.shape) differs from source shape \(shape)")
        let outer = target[..<ax].reduce(1, *), n = target[ax], inner = target[(ax + 1)...].reduce(1, *), k = shape[ax]
        let out = Storage(repeating: 0, count: target.product)
        let px = pointer, po = out.pointer
        index.values.withUnsafeBufferPointer { idx in
            for o in 0..<outer {
                for j in 0..<k {
                    for e in 0..<inner {
                        let at = (o * k + j) * inner + e, i = idx[at]
                        require(i >= 0 && i < n, "scatterAdd: index \(i) out of range for axis \(ax) of shape \(target)")
                        po[(o * n + i) * inner + e] += px[at]
                    }
                }
            }
        }
        return Tensor.result("scatter_add", target, out, [self]) { g, _ in [g.gather(axis: ax, index)] }
    }
}
