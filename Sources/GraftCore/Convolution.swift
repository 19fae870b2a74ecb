/// How a 2-D window op (convolution, pooling) pads the spatial edges of its input.
public enum Padding: Sendable, Equatable {
    /// `rows` above and below, `columns` left and right, as PyTorch's `padding=(rows, columns)`.
    case symmetric(Int, Int)
    /// Each edge on its own, as `F.pad` followed by an unpadded op.
    case asymmetric(top: Int, bottom: Int, left: Int, right: Int)
    /// TensorFlow's "SAME": ceil(in / stride) outputs; an odd total puts the extra row or column bottom or right.
    case same

    /// No padding (TensorFlow's "VALID").
    public static let valid = Padding.symmetric(0, 0)

    /// The (top, bottom, left, right) widths for an input of spatial `size` under the given window.
    public func edges(size: (Int, Int), kernel: (Int, Int), stride: (Int, Int),
                      dilation: (Int, Int)) -> (top: Int, bottom: Int, left: Int, right: Int) {
        switch self {
        case let .symmetric(rows, columns): return (rows, rows, columns, columns)
        case let .asymmetric(top, bottom, left, right): return (top, bottom, left, right)
        case .same:
            func split(_ n: Int, _ k: Int, _ s: Int, _ d: Int) -> (Int, Int) {
                let total = Swift.max(((n + s - 1) / s - 1) * s + (k - 1) * d + 1 - n, 0)
                return (total / 2, total - total / 2)
            }
            let (top, bottom) = split(size.0, kernel.0, stride.0, dilation.0)
            let (left, right) = split(size.1, kernel.1, stride.1, dilation.1)
            return (top, bottom, left, right)
        }
    }
}

/// Window positions along one axis of `size` inputs padded by `before` and `after`, as PyTorch counts them.
/// Ceil mode adds a last partial window, unless it would start in the trailing padding.
func windowCount(_ size: Int, kernel: Int, stride: Int, dilation: Int, before: Int, after: Int,
                 ceilMode: Bool = false) -> Int {
    let span = size + before + after - (kernel - 1) * dilation - 1
    guard span >= 0 else { return 0 }
    var n = (ceilMode ? (span + stride - 1) / stride : span / stride) + 1
    if ceilMode && (n - 1) * stride >= size + before { n -= 1 }
    return n
}

/// The outputs `o` (out of `outSize`) whose tap `k` reads input o·stride − pad + k·dilation inside 0..<inSize.
@inline(__always)
func validOutputs(tap k: Int, inSize: Int, outSize: Int, stride: Int, pad: Int, dilation: Int) -> Range<Int> {
    let offset = k * dilation - pad
    let lo = Swift.min(outSize, offset >= 0 ? 0 : (-offset + stride - 1) / stride)
    let last = inSize - 1 - offset
    let hi = last < 0 ? 0 : Swift.min(outSize, last / stride + 1)
    return lo..<Swift.max(lo, hi)
}

/// The spatial layout that a convolution and its two gradient ops share. Only the top and left padding appear:
/// the bottom and right widths matter only through the output size.
struct ConvGeometry: Sendable {
    let h, w, kh, kw, oh, ow: Int
    let strideH, strideW, dilationH, dilationW, top, left, groups: Int

    var inPlane: Int { h * w }
    var outPlane: Int { oh * ow }
    var taps: Int { kh * kw }
    /// A 1×1 kernel, stride 1, no padding: the GEMM operand is the input itself.
    var isPointwise: Bool { kh == 1 && kw == 1 && strideH == 1 && strideW == 1 && top == 0 && left == 0 && oh == h && ow == w }

    @inline(__always)
    func rows(tap ki: Int) -> Range<Int> {
        validOutputs(tap: ki, inSize: h, outSize: oh, stride: strideH, pad: top, dilation: dilationH)
    }

    @inline(__always)
    func columns(tap kj: Int) -> Range<Int> {
        validOutputs(tap: kj, inSize: w, outSize: ow, stride: strideW, pad: left, dilation: dilationW)
    }
}

extension Tensor {
    /// 2-D cross-correlation of x [N, Cin, H, W] with weight [Cout, Cin/groups, kh, kw] plus an optional bias
    /// [Cout], as `torch.nn.functional.conv2d` (with TensorFlow's "SAME" and asymmetric padding besides).
    public static func conv2d(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1),
                              padding: Padding = .valid, dilation: (Int, Int) = (1, 1), groups: Int = 1) -> Tensor {
        let geo = convGeometry(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation,
                               groups: groups)
        return convolution(x, weight, bias, geo)
    }

    /// The checked geometry of conv2d(x, weight, bias) under the given window settings.
    static func convGeometry(_ x: Tensor, weight: Tensor, bias: Tensor?, stride: (Int, Int), padding: Padding,
                             dilation: (Int, Int), groups: Int) -> ConvGeometry {
        require(x.rank == 4 && weight.rank == 4,
                     "conv2d: input \(x.shape) and weight \(weight.shape) must both have rank 4 (NCHW, [Cout, Cin/groups, kh, kw])")
        let (cin, cout) = (x.shape[1], weight.shape[0])
        require(groups >= 1 && cout % groups == 0,
                     "conv2d: weight \(weight.shape) has \(cout) output channels, not divisible by groups \(groups)")
        require(weight.count > 0, "conv2d: weight \(weight.shape) is empty")
        require(cin == weight.shape[1] * groups,
                     "conv2d: input \(x.shape) has \(cin) channels, weight \(weight.shape) expects \(weight.shape[1] * groups) (groups \(groups))")
        if let bias {
            require(bias.shape == [cout], "conv2d: bias \(bias.shape) does not fit weight \(weight.shape)")
        }
        require(stride.0 >= 1 && stride.1 >= 1 && dilation.0 >= 1 && dilation.1 >= 1,
                     "conv2d: stride \(stride) and dilation \(dilation) must be positive (input \(x.shape), weight \(weight.shape))")
        let (h, w, kh, kw) = (x.shape[2], x.shape[3], weight.shape[2], weight.shape[3])
        let pad = padding.edges(size: (h, w), kernel: (kh, kw), stride: stride, dilation: dilation)
        require(pad.top >= 0 && pad.bottom >= 0 && pad.left >= 0 && pad.right >= 0,
                     "conv2d: negative padding \(pad) for input \(x.shape), weight \(weight.shape)")
        let oh = windowCount(h, kernel: kh, stride: stride.0, dilation: dilation.0, before: pad.top, after: pad.bottom)
        let ow = windowCount(w, kernel: kw, stride: stride.1, dilation: dilation.1, before: pad.left, after: pad.right)
        require(oh > 0 && ow > 0,
                     "conv2d: input \(x.shape) padded by \(pad) is smaller than weight \(weight.shape) dilated by \(dilation)")
        return ConvGeometry(h: h, w: w, kh: kh, kw: kw, oh: oh, ow: ow, strideH: stride.0, strideW: stride.1,
                            dilationH: dilation.0, dilationW: dilation.1, top: pad.top, left: pad.left, groups: groups)
    }

    /// y = conv(x, w) + b, the first of three recorded primitives whose backward rules are one another.
    static func convolution(_ x: Tensor, _ weight: Tensor, _ bias: Tensor?, _ geo: ConvGeometry) -> Tensor {
        let (n, cout) = (x.shape[0], weight.shape[0])
        let out = Storage(count: n * cout * geo.outPlane)
        if out.count > 0 {
            convolve(x, weight, geo, into: out.pointer, then: nil)
            if let bias { addChannelBias(bias.pointer, to: out.pointer, planes: n * cout, channels: cout, size: geo.outPlane) }
        }
        let inputs = bias.map { [x, weight, $0] } ?? [x, weight]
        return result("conv2d", [n, cout, geo.oh, geo.ow], out, inputs) { g, needs in
            [needs[0] ? convInputGrad(g, weight, geo) : nil,
             needs[1] ? convWeightGrad(x, g, geo) : nil,
             needs.count > 2 && needs[2] ? g.sum(axes: [0, 2, 3]) : nil]
        }
    }

    /// z = ∂⟨conv(x, w), g⟩/∂x: the transposed convolution of g [N, Cout, oh, ow], shaped like the input.
    static func convInputGrad(_ g: Tensor, _ weight: Tensor, _ geo: ConvGeometry) -> Tensor {
        let (n, cout, cin) = (g.shape[0], g.shape[1], weight.shape[1] * geo.groups)
        let out = Storage(repeating: 0, count: n * cin * geo.inPlane)
        if out.count > 0 && g.count > 0 {
            if isDepthwise(cin: cin, geo) {
                depthwiseInputGrad(g.pointer, weight.pointer, out.pointer, batch: n, cin: cin, cout: cout, geo)
            } else if WinogradConvolution.applies(cin: cin, cout: cout, geo) {
                let plan = WinogradConvolution(inputGradient: geo, cin: cin, cout: cout)
                plan.run(g.pointer, plan.transformWeight(weight.pointer, flipped: true), batch: n, into: out.pointer)
            } else if let split = TapClasses(cin: cin, cout: cout, geo) {
                split.inputGradient(g.pointer, weight.pointer, out.pointer, batch: n)
            } else {
                gemmConvInputGrad(g.pointer, weight.pointer, out.pointer, batch: n, cin: cin, cout: cout, geo)
            }
        }
        return result("conv2d_input_grad", [n, cin, geo.h, geo.w], out, [g, weight]) { gz, needs in
            [needs[0] ? convolution(gz, weight, nil, geo) : nil,
             needs[1] ? convWeightGrad(gz, g, geo) : nil]
        }
    }

    /// z = ∂⟨conv(x, w), g⟩/∂w, shaped like the weight [Cout, Cin/groups, kh, kw].
    static func convWeightGrad(_ x: Tensor, _ g: Tensor, _ geo: ConvGeometry) -> Tensor {
        let (n, cin, cout) = (x.shape[0], x.shape[1], g.shape[1])
        let shape = [cout, cin / geo.groups, geo.kh, geo.kw]
        let out = Storage(repeating: 0, count: shape.product)
        if out.count > 0 && g.count > 0 {
            if isDepthwise(cin: cin, geo) {
                depthwiseWeightGrad(x.pointer, g.pointer, out.pointer, batch: n, cin: cin, cout: cout, geo)
            } else if WinogradConvolution.applies(cin: cin, cout: cout, geo) {
                WinogradConvolution(forward: geo, cin: cin, cout: cout)
                    .weightGradient(x.pointer, g.pointer, batch: n, into: out.pointer)
            } else if let split = TapClasses(cin: cin, cout: cout, geo) {
                split.weightGradient(x.pointer, g.pointer, out.pointer, batch: n)
            } else {
                gemmConvWeightGrad(x.pointer, g.pointer, out.pointer, batch: n, cin: cin, cout: cout, geo)
            }
        }
        return result("conv2d_weight_grad", shape, out, [x, g]) { gz, needs in
            [needs[0] ? convInputGrad(g, gz, geo) : nil,
             needs[1] ? convolution(x, gz, nil, geo) : nil]
        }
    }

    /// y = conv(x, w), fully written, by the fastest kernel for `geo`, then `epilogue` over every output element:
    /// inside the Winograd path's last pass over the output, or as one pass of its own after the others.
    static func convolve(_ x: Tensor, _ weight: Tensor, _ geo: ConvGeometry, into y: UnsafeMutablePointer<Float>,
                         then epilogue: ChannelEpilogue?) {
        let (n, cin, cout) = (x.shape[0], x.shape[1], weight.shape[0])
        if WinogradConvolution.applies(cin: cin, cout: cout, geo) {
            let plan = WinogradConvolution(forward: geo, cin: cin, cout: cout)
            plan.run(x.pointer, plan.transformWeight(weight.pointer, flipped: false), batch: n, into: y, then: epilogue)
            return
        }
        if isDepthwise(cin: cin, geo) {
            depthwiseForward(x.pointer, weight.pointer, y, batch: n, cin: cin, cout: cout, geo)
        } else if let split = TapClasses(cin: cin, cout: cout, geo) {
            split.forward(x.pointer, weight.pointer, y, batch: n)
        } else {
            gemmConvForward(x.pointer, weight.pointer, y, batch: n, cin: cin, cout: cout, geo)
        }
        epilogue?.apply(to: y, planes: n * cout, size: geo.outPlane)
    }

    /// One input channel per group: a GEMM would have a single row per group, so a direct loop is faster.
    private static func isDepthwise(cin: Int, _ geo: ConvGeometry) -> Bool {
        geo.groups > 1 && geo.groups == cin
    }
}

/// y[p] += bias[p mod channels] over `planes` planes of `size` floats.
private func addChannelBias(_ bias: UnsafePointer<Float>, to y: UnsafeMutablePointer<Float>, planes: Int,
                            channels: Int, size: Int) {
    parallelChunks(planes, grain: Swift.max(1, (1 << 15) / Swift.max(size, 1))) { range in
        for p in range {
            let b = bias[p % channels], row = y + p * size
            for i in 0..<size { row[i] += b }
        }
    }
}
