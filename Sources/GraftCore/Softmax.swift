#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Applies `body` to every row of `n` contiguous floats of `x` (the last axis), writing rows of `out`.
@inline(__always)
func forEachRow(_ x: Tensor, _ out: Storage, _ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) {
    let n = x.shape.last ?? 1, rows = x.count / Swift.max(n, 1)
    let px = x.pointer, po = out.pointer
    parallelChunks(rows, grain: Swift.max(1, (1 << 14) / Swift.max(n, 1))) { range in
        for r in range { body(px + r * n, po + r * n, n) }
    }
}

extension Tensor {
    /// Softmax along `axis`; the last axis runs in one fused pass per row.
    public func softmax(axis a: Int = -1) -> Tensor {
        let ax = axis(a, op: "softmax")
        if ax != rank - 1 { return transposed(ax, -1).softmax(axis: -1).transposed(ax, -1) }
        let out = Storage(count: count)
        forEachRow(self, out) { x, y, n in
            let inv = 1 / expShifted(x, y, n, shift: rowMax(x, n))
            for i in 0..<n { y[i] *= inv }
        }
        return Tensor.result("softmax", shape, out, [self]) { g, _ in
            [Tensor.softmaxGradient(g, savedOutput(self.shape, out) { self.softmax(axis: -1) })]
        }
    }

    /// The gradient through a softmax over the last axis whose output is y: y ⊙ (g − Σ g ⊙ y).
    static func softmaxGradient(_ g: Tensor, _ y: Tensor) -> Tensor {
        let gy = g * y
        return gy - y * gy.sum(axes: [-1], keepDims: true)
    }

    /// log(softmax(x)) along `axis`, computed stably as x − logsumexp(x).
    public func logSoftmax(axis a: Int = -1) -> Tensor {
        let ax = axis(a, op: "logSoftmax")
        if ax != rank - 1 { return transposed(ax, -1).logSoftmax(axis: -1).transposed(ax, -1) }
        let out = Storage(count: count)
        forEachRow(self, out) { x, y, n in
            let m = rowMax(x, n)
            let lse = m + logf(expShifted(x, y, n, shift: m))
            for i in 0..<n { y[i] = x[i] - lse }
        }
        return Tensor.result("log_softmax", shape, out, [self]) { g, _ in
            let p = savedOutput(self.shape, out) { self.logSoftmax(axis: -1) }.exp()
            return [g - p * g.sum(axes: [-1], keepDims: true)]
        }
    }

    /// Mean cross-entropy of `logits` [N, C] against class `targets`, as `torch.nn.functional.cross_entropy`:
    /// optional label smoothing ε (the target becomes (1−ε)·onehot + ε/C) and an ignored target value whose
    /// rows count neither in the loss nor in the mean. Fused: one pass forward, one pass backward.
    public static func crossEntropy(_ logits: Tensor, targets: [Int], labelSmoothing eps: Float = 0,
                                    ignoreIndex: Int? = nil) -> Tensor {
        require(logits.rank == 2, "crossEntropy: logits must be [N, C], got \(logits.shape)")
        let (rows, classes) = (logits.shape[0], logits.shape[1])
        require(targets.count == rows, "crossEntropy: \(targets.count) targets for logits \(logits.shape)")
        require(eps >= 0 && eps <= 1, "crossEntropy: label smoothing \(eps) outside [0, 1]")
        for t in targets where t != ignoreIndex && (t < 0 || t >= classes) {
            fatalError("crossEntropy: target \(t) out of range for \(classes) classes")
        }
        let counted = targets.filter { $0 != ignoreIndex }.count
        let lse = Storage(count: rows)
        var total: Double = 0
        let px = logits.pointer
        for r in 0..<rows where targets[r] != ignoreIndex {
            let x = px + r * classes
            var m = -Float.infinity, mean: Float = 0
            for c in 0..<classes { m = Swift.max(m, x[c]); mean += x[c] }
            var s: Float = 0
            for c in 0..<classes { s += expf(x[c] - m) }
            lse.pointer[r] = m + logf(s)
            let nll = lse.pointer[r] - x[targets[r]], smooth = lse.pointer[r] - mean / Float(classes)
            total += Double((1 - eps) * nll + eps * smooth)
        }
        let loss = Storage(repeating: Float(total / Double(counted)), count: 1)
        return result("cross_entropy", [], loss, [logits]) { g, _ in
            // d loss / d logits = (softmax − target distribution) / counted, zero on ignored rows.
            if GradMode.isEnabled {
                var q = [Float](repeating: 0, count: rows * classes), keep = [Float](repeating: 0, count: rows)
                for r in 0..<rows where targets[r] != ignoreIndex {
                    keep[r] = 1
                    for c in 0..<classes { q[r * classes + c] = eps / Float(classes) }
                    q[r * classes + targets[r]] += 1 - eps
                }
                let p = logits.softmax(axis: -1) * Tensor(keep, shape: [rows, 1])
                return [(p - Tensor(q, shape: [rows, classes])) * (g * (1 / Float(counted)))]
            }
            let out = Storage(repeating: 0, count: rows * classes)
            let scale = g.item / Float(counted), px = logits.pointer
            for r in 0..<rows where targets[r] != ignoreIndex {
                let x = px + r * classes, y = out.pointer + r * classes, l = lse.pointer[r]
                for c in 0..<classes { y[c] = (expf(x[c] - l) - eps / Float(classes)) * scale }
                y[targets[r]] -= (1 - eps) * scale
            }
            return [Tensor(shape: [rows, classes], storage: out)]
        }
    }
}
