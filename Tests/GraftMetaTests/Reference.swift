import Foundation
import Testing
import GraftCore
import GraftMeta

/// A ReLU MLP evaluated in Double with hand-written backpropagation, sharing nothing with the library's kernels or
/// autograd: the reference that MAML's and ProtoNets' gradients are checked against. Parameters are flat arrays in
/// `MetaMLP`'s order (weight [out, in] row-major, then bias, per layer).
struct ReferenceMLP {
    let sizes: [Int]

    typealias Rows = [[Double]]

    /// The output rows, and each layer's pre-activations and inputs (for the backward pass).
    func forward(_ p: [[Double]], _ x: Rows) -> (output: Rows, inputs: [Rows], pre: [Rows]) {
        var a = x, inputs: [Rows] = [], pre: [Rows] = []
        let layers = sizes.count - 1
        for l in 0..<layers {
            let (fanIn, fanOut) = (sizes[l], sizes[l + 1])
            let w = p[2 * l], b = p[2 * l + 1]
            inputs.append(a)
            let z = a.map { row in
                (0..<fanOut).map { o in b[o] + (0..<fanIn).reduce(0.0) { $0 + w[o * fanIn + $1] * row[$1] } }
            }
            pre.append(z)
            a = l < layers - 1 ? z.map { $0.map { max($0, 0) } } : z
        }
        return (a, inputs, pre)
    }

    /// The gradient of Σ_rows ⟨dOutput[row], output[row]⟩ with respect to the parameters.
    func backward(_ p: [[Double]], _ x: Rows, dOutput: Rows) -> [[Double]] {
        let (_, inputs, pre) = forward(p, x)
        var grads = p.map { [Double](repeating: 0, count: $0.count) }
        var d = dOutput
        for l in stride(from: sizes.count - 2, through: 0, by: -1) {
            let (fanIn, fanOut) = (sizes[l], sizes[l + 1])
            if l < sizes.count - 2 {
                d = zip(d, pre[l]).map { zip($0, $1).map { g, z in z > 0 ? g : 0 } }
            }
            let w = p[2 * l]
            var below = Rows(repeating: [Double](repeating: 0, count: fanIn), count: x.count)
            for (r, row) in inputs[l].enumerated() {
                for o in 0..<fanOut {
                    grads[2 * l + 1][o] += d[r][o]
                    for i in 0..<fanIn {
                        grads[2 * l][o * fanIn + i] += d[r][o] * row[i]
                        below[r][i] += d[r][o] * w[o * fanIn + i]
                    }
                }
            }
            d = below
        }
        return grads
    }

    func mse(_ p: [[Double]], _ x: Rows, _ y: Rows) -> Double {
        let out = forward(p, x).output
        let n = Double(out.count * out[0].count)
        var total: Double = 0
        for (o, t) in zip(out, y) { for (a, b) in zip(o, t) { total += (a - b) * (a - b) } }
        return total / n
    }

    func mseGradient(_ p: [[Double]], _ x: Rows, _ y: Rows) -> [[Double]] {
        let out = forward(p, x).output
        let n = Double(out.count * out[0].count)
        let d: Rows = zip(out, y).map { o, t in zip(o, t).map { (a: Double, b: Double) -> Double in 2 * (a - b) / n } }
        return backward(p, x, dOutput: d)
    }

    /// L_query(φ_k), φ_{i+1} = φ_i − α ∇L_support(φ_i), φ_0 = p: MAML's objective for one task.
    func mamlObjective(_ p: [[Double]], support: (Rows, Rows), query: (Rows, Rows), rate: Double, steps: Int) -> Double {
        var phi = p
        for _ in 0..<steps {
            let g = mseGradient(phi, support.0, support.1)
            phi = zip(phi, g).map { zip($0, $1).map { $0 - rate * $1 } }
        }
        return mse(phi, query.0, query.1)
    }
}

/// Central differences of a Double function of flat parameter arrays.
func numericGradient(_ p: [[Double]], eps: Double, _ f: ([[Double]]) -> Double) -> [[Double]] {
    p.indices.map { k in
        p[k].indices.map { i in
            var up = p, down = p
            up[k][i] += eps
            down[k][i] -= eps
            return (f(up) - f(down)) / (2 * eps)
        }
    }
}

/// Central differences of a Float-valued function of Float tensors, perturbed in place, accumulated in Double over
/// the actual (rounded) step.
func numericGradient(_ tensors: [Tensor], eps: Float, _ f: () -> Float) -> [[Double]] {
    tensors.map { t in
        (0..<t.count).map { i in
            let p = t.pointer, saved = p[i]
            let up = saved + eps, down = saved - eps
            p[i] = up
            let fu = Double(f())
            p[i] = down
            let fd = Double(f())
            p[i] = saved
            return (fu - fd) / (Double(up) - Double(down))
        }
    }
}

/// The largest violation of |a − b| ≤ atol + rtol·|b| over all elements (≤ 0 when all agree), with its place.
func worstMismatch(_ a: [[Double]], _ b: [[Double]], rtol: Double, atol: Double) -> (excess: Double, tensor: Int, index: Int) {
    var worst = (excess: -Double.infinity, tensor: -1, index: -1)
    for (k, (x, y)) in zip(a, b).enumerated() {
        for (i, (u, v)) in zip(x, y).enumerated() {
            let excess = abs(u - v) - (atol + rtol * abs(v))
            if excess > worst.excess { worst = (excess, k, i) }
        }
    }
    return worst
}

func doubles(_ tensors: [Tensor]) -> [[Double]] { tensors.map { $0.scalars.map(Double.init) } }

/// The rows of a [n, d] tensor as Double arrays.
func rows(_ t: Tensor) -> [[Double]] {
    let d = t.count / max(t.shape[0], 1), s = t.scalars
    return (0..<t.shape[0]).map { r in (0..<d).map { Double(s[r * d + $0]) } }
}

/// Asserts two arrays agree element-wise to |a − b| ≤ atol + rtol·|b|.
func expectClose(_ a: [Float], _ b: [Float], rtol: Float = 1e-5, atol: Float = 1e-6, _ what: String = "",
                 sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(a.count == b.count, "\(what): lengths \(a.count) vs \(b.count)", sourceLocation: sourceLocation)
    let bad = zip(a, b).enumerated().first { abs($0.element.0 - $0.element.1) > atol + rtol * abs($0.element.1) }
    #expect(bad == nil, "\(what): first mismatch at \(bad?.offset ?? -1): \(bad?.element.0 ?? 0) vs \(bad?.element.1 ?? 0)",
            sourceLocation: sourceLocation)
}
