/// The backward of a fused op while its rule is being recorded (higher-order gradients): differentiate the op's
/// composite definition, built from recorded ops, instead of running the fused kernel.
func compositeGradients(_ inputs: [Tensor], _ needs: [Bool], _ g: Tensor,
                        _ definition: ([Tensor]) -> Tensor) -> [Tensor?] {
    let wanted = inputs.indices.filter { needs[$0] }
    let gs = grad(of: definition(inputs), wrt: wanted.map { inputs[$0] }, gradOutput: g, createGraph: true)
    var out = [Tensor?](repeating: nil, count: inputs.count)
    for (i, k) in wanted.enumerated() { out[k] = gs[i] }
    return out
}

extension Tensor {
    /// Layer normalisation over the last axis with optional affine weight and bias ([last]), as
    /// `torch.nn.functional.layer_norm`.
    public static func layerNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, eps: Float = 1e-5) -> Tensor {
        let n = x.shape.last ?? 1, rows = x.count / Swift.max(n, 1)
        for p in [weight, bias].compactMap({ $0 }) {
            require(p.shape == [n], "layerNorm: parameter \(p.shape) does not fit input \(x.shape)")
        }
        let stats = Storage(count: 2 * rows)  // mean, 1/std per row
        let out = Storage(count: x.count)
        let pw = weight?.pointer, pb = bias?.pointer, ps = stats.pointer
        let px = x.pointer, po = out.pointer
        parallelChunks(rows, grain: Swift.max(1, (1 << 14) / Swift.max(n, 1))) { range in
            for r in range {
                let xr = px + r * n, yr = po + r * n
                let mean = contiguousSum(xr, n) / Float(n)
                var v: Float = 0
                for i in 0..<n { let d = xr[i] - mean; v += d * d }
                let rstd = 1 / (v / Float(n) + eps).squareRoot()
                ps[2 * r] = mean
                ps[2 * r + 1] = rstd
                for i in 0..<n { yr[i] = (xr[i] - mean) * rstd * (pw?[i] ?? 1) + (pb?[i] ?? 0) }
            }
        }
        let inputs = [x] + [weight, bias].compactMap { $0 }
        return result("layer_norm", x.shape, out, inputs) { g, needs in
            if GradMode.isEnabled {
                return compositeGradients(inputs, needs, g) { t in
                    let xc = t[0] - t[0].mean(axes: [-1], keepDims: true)
                    var y = xc / ((xc * xc).mean(axes: [-1], keepDims: true) + eps).sqrt()
                    if weight != nil { y = y * t[1] }
                    if bias != nil { y = y + t[t.count - 1] }
                    return y
                }
            }
            let gx = Storage(count: x.count), gw = Storage(repeating: 0, count: n), gb = Storage(repeating: 0, count: n)
            let pg = g.pointer, ps = stats.pointer, px = x.pointer, pw = weight?.pointer
            for r in 0..<rows {
                let xr = px + r * n, gr = pg + r * n, dx = gx.pointer + r * n
                let mean = ps[2 * r], rstd = ps[2 * r + 1]
                var sumG: Float = 0, sumGX: Float = 0
                for i in 0..<n {
                    let xhat = (xr[i] - mean) * rstd, gh = gr[i] * (pw?[i] ?? 1)
                    sumG += gh
                    sumGX += gh * xhat
                    gw.pointer[i] += gr[i] * xhat
                    gb.pointer[i] += gr[i]
                }
                let a = sumG / Float(n), b = sumGX / Float(n)
                for i in 0..<n {
                    let xhat = (xr[i] - mean) * rstd
                    dx[i] = rstd * (gr[i] * (pw?[i] ?? 1) - a - xhat * b)
                }
            }
            var grads: [Tensor?] = [needs[0] ? Tensor(shape: x.shape, storage: gx) : nil]
            if weight != nil { grads.append(needs[grads.count] ? Tensor(shape: [n], storage: gw) : nil) }
            if bias != nil { grads.append(needs[grads.count] ? Tensor(shape: [n], storage: gb) : nil) }
            return grads
        }
    }

    /// Values per task below which batch norm's loops stay on one thread.
    static let normalizationGrain = 1 << 15

    /// x · scale[c] + shift[c] over x [N, C, …] in one pass: inference-mode batch norm with its statistics folded in.
    public static func channelAffine(_ x: Tensor, scale: Tensor, shift: Tensor) -> Tensor {
        require(x.rank >= 2 && scale.shape == [x.shape[1]] && shift.shape == [x.shape[1]],
                "channelAffine: scale \(scale.shape) and shift \(shift.shape) must be [C] for input \(x.shape)")
        let c = x.shape[1], size = x.shape[2...].reduce(1, *), planes = x.shape[0] * c
        let out = Storage(count: x.count)
        let (px, po, pa, pb) = (x.pointer, out.pointer, scale.pointer, shift.pointer)
        parallelChunks(planes, grain: Swift.max(1, (1 << 15) / Swift.max(size, 1))) { range in
            for p in range {
                let a = pa[p % c], b = pb[p % c], src = px + p * size, dst = po + p * size
                for i in 0..<size { dst[i] = src[i] * a + b }
            }
        }
        return result("channel_affine", x.shape, out, [x, scale, shift]) { g, needs in
            let channel = [1, c] + [Int](repeating: 1, count: x.rank - 2)
            let others = [0] + Array(2..<x.rank)
            return [needs[0] ? g * scale.reshaped(channel) : nil,
                    needs[1] ? (g * x).sum(axes: others) : nil,
                    needs[2] ? g.sum(axes: others) : nil]
        }
    }

    /// Inference-mode batch norm as a per-channel affine map x · scale + shift, both [C]: scale = weight / √(var + eps),
    /// shift = bias − mean · scale. Differentiable in weight and bias; the running statistics are constants.
    public static func batchNormAffine(weight: Tensor?, bias: Tensor?, runningMean: Tensor, runningVar: Tensor,
                                       eps: Float) -> (scale: Tensor, shift: Tensor) {
        let rstd = withNoGrad { (runningVar + eps).sqrt() }
        var scale = 1 / rstd, shift = -runningMean.detached()
        if let weight { scale = scale * weight }
        shift = shift * scale
        if let bias { shift = shift + bias }
        return (scale, shift)
    }

    /// Batch normalisation of x [N, C, …] per channel, as `torch.nn.functional.batch_norm`. In training it
    /// normalises with the batch statistics and, when running buffers are given, updates them in place
    /// (running var with the unbiased estimate); otherwise it uses the running statistics.
    public static func batchNorm(_ x: Tensor, weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVar: Tensor?,
                                 training: Bool, momentum: Float = 0.1, eps: Float = 1e-5) -> Tensor {
        require(x.rank >= 2, "batchNorm: input must be [N, C, …], got \(x.shape)")
        let c = x.shape[1], n = x.shape[0], s = x.shape[2...].reduce(1, *)
        for p in [weight, bias, runningMean, runningVar].compactMap({ $0 }) {
            require(p.shape == [c], "batchNorm: parameter \(p.shape) does not fit input \(x.shape) (\(c) channels)")
        }
        let channel = [1, c] + [Int](repeating: 1, count: x.rank - 2)
        if !training {
            guard let runningMean, let runningVar else { fatalError("batchNorm: eval mode needs running statistics") }
            let (scale, shift) = batchNormAffine(weight: weight, bias: bias, runningMean: runningMean,
                                                 runningVar: runningVar, eps: eps)
            return channelAffine(x, scale: scale, shift: shift)
        }
        let m = n * s
        require(m > 1, "batchNorm: training needs more than one value per channel, got input \(x.shape)")
        let stats = Storage(count: 2 * c)
        let px = x.pointer
        // Channels are independent, so threads split them; each channel's sums run in the same order whatever the
        // split, and the result does not depend on the thread count.
        let channelGrain = Swift.max(1, normalizationGrain / m)
        parallelChunks(c, grain: channelGrain) { channels in for ch in channels {
            var sum: Double = 0, sq: Double = 0
            for b in 0..<n {
                let p = px + (b * c + ch) * s
                let t = contiguousSum(p, s)
                sum += Double(t)
                let mean0 = t / Float(s)
                sq += Double(squaredDeviationSum(p, s, from: mean0)) + Double(s) * Double(mean0) * Double(mean0)
            }
            let mean = sum / Double(m), variance = Swift.max(0, sq / Double(m) - mean * mean)
            stats.pointer[2 * ch] = Float(mean)
            stats.pointer[2 * ch + 1] = Float(1 / (variance + Double(eps)).squareRoot())
            if let runningMean, let runningVar {
                runningMean.pointer[ch] = (1 - momentum) * runningMean.pointer[ch] + momentum * Float(mean)
                runningVar.pointer[ch] = (1 - momentum) * runningVar.pointer[ch]
                    + momentum * Float(variance * Double(m) / Double(m - 1))
            }
        } }
        let out = Storage(count: x.count)
        let pw = weight?.pointer, pb = bias?.pointer, ps = stats.pointer
        parallelChunks(n * c, grain: Swift.max(1, normalizationGrain / s)) { planes in for plane in planes {
            let ch = plane % c
            let p = px + plane * s, y = out.pointer + plane * s
            let a = ps[2 * ch + 1] * (pw?[ch] ?? 1), shift = (pb?[ch] ?? 0) - ps[2 * ch] * a
            for i in 0..<s { y[i] = p[i] * a + shift }
        } }
        let inputs = [x] + [weight, bias].compactMap { $0 }
        let axes = [0] + Array(2..<x.rank)
        return result("batch_norm", x.shape, out, inputs) { g, needs in
            if GradMode.isEnabled {
                return compositeGradients(inputs, needs, g) { t in
                    let xc = t[0] - t[0].mean(axes: axes, keepDims: true)
                    var y = xc / ((xc * xc).mean(axes: axes, keepDims: true) + eps).sqrt()
                    if weight != nil { y = y * t[1].reshaped(channel) }
                    if bias != nil { y = y + t[t.count - 1].reshaped(channel) }
                    return y
                }
            }
            let gx = Storage(count: x.count), gw = Storage(count: c), gb = Storage(count: c)
            let pg = g.pointer, ps = stats.pointer, px = x.pointer, pw = weight?.pointer
            parallelChunks(c, grain: channelGrain) { channels in for ch in channels {
                let mean = ps[2 * ch], rstd = ps[2 * ch + 1]
                var sumG: Float = 0, sumGX: Float = 0
                for b in 0..<n {
                    let (sum, dot) = sumAndCenteredDot(pg + (b * c + ch) * s, px + (b * c + ch) * s, s, from: mean)
                    sumG += sum
                    sumGX += dot * rstd
                }
                gw.pointer[ch] = sumGX
                gb.pointer[ch] = sumG
                let k = (pw?[ch] ?? 1) * rstd, a = sumG / Float(m), bb = sumGX / Float(m)
                for b in 0..<n {
                    let xp = px + (b * c + ch) * s, gp = pg + (b * c + ch) * s, dx = gx.pointer + (b * c + ch) * s
                    for i in 0..<s { dx[i] = k * (gp[i] - a - (xp[i] - mean) * rstd * bb) }
                }
            } }
            var grads: [Tensor?] = [needs[0] ? Tensor(shape: x.shape, storage: gx) : nil]
            if weight != nil { grads.append(needs[grads.count] ? Tensor(shape: [c], storage: gw) : nil) }
            if bias != nil { grads.append(needs[grads.count] ? Tensor(shape: [c], storage: gb) : nil) }
            return grads
        }
    }

    /// Inverted dropout: zeroes each element with probability `p` and scales the rest by 1/(1−p) in training;
    /// the identity otherwise.
    public func dropout(_ p: Float, training: Bool, using rng: inout RandomGenerator) -> Tensor {
        require(p >= 0 && p < 1, "dropout: probability \(p) outside [0, 1)")
        guard training, p > 0 else { return self }
        let keep = 1 / (1 - p)
        let mask = Storage(count: count)
        for i in 0..<count { mask.pointer[i] = rng.nextUniform() < p ? 0 : keep }
        return self * Tensor(shape: shape, storage: mask)
    }

    /// Inverted dropout whose mask for row i (along axis 0) is drawn from
    /// `RandomGenerator(seed: seed).split(rowKeys[i])` alone, so a row gets the same mask whatever batch, or rank's
    /// shard of a batch, it sits in.
    public func dropout(_ p: Float, training: Bool, rowKeys: [UInt64], seed: UInt64) -> Tensor {
        require(p >= 0 && p < 1, "dropout: probability \(p) outside [0, 1)")
        let rows = shape.first ?? 0
        require(rank >= 1 && rows == rowKeys.count,
                "dropout: input \(shape) has \(rows) rows but \(rowKeys.count) row keys were given")
        guard training, p > 0 else { return self }
        let keep = 1 / (1 - p), width = Array(shape.dropFirst()).product
        let base = RandomGenerator(seed: seed), mask = Storage(count: count)
        parallelChunks(rows, grain: Swift.max(1, (1 << 15) / Swift.max(width, 1))) { range in
            for r in range {
                var rng = base.split(rowKeys[r])
                let m = mask.pointer + r * width
                for i in 0..<width { m[i] = rng.nextUniform() < p ? 0 : keep }
            }
        }
        return self * Tensor(shape: shape, storage: mask)
    }

    /// Rows of `self` (a [vocabulary, dim] table) for each id, shaped ids.shape + [dim]; the gradient is a
    /// scatter-add into the table.
    public func embedding(_ ids: Indices) -> Tensor {
        require(rank == 2, "embedding: table must be [vocabulary, dim], got \(shape)")
        return indexSelect(axis: 0, ids)
    }
}
