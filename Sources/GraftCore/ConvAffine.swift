/// The activation that ends a convolution block.
public enum BlockActivation: Sendable {
    case identity, relu
    /// min(max(x, 0), 6), as in MobileNet and EfficientNet-Lite.
    case relu6

    /// The recorded op.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch self {
        case .identity: return x
        case .relu: return x.relu()
        case .relu6: return x.relu6()
        }
    }

    /// The interval the fused path clamps to.
    var bounds: (lo: Float, hi: Float) {
        switch self {
        case .identity: return (-.infinity, .infinity)
        case .relu: return (0, .infinity)
        case .relu6: return (0, 6)
        }
    }
}

extension Tensor {
    /// act(conv2d(x, weight, bias) · scale + shift + residual), scale and shift [Cout] per output channel: a
    /// convolution followed by inference-mode batch norm, optionally a residual add (`residual` shaped like the
    /// output), then an activation. When nothing asks for a gradient (a frozen body, `withNoGrad`) the last three
    /// happen in one pass over the output, inside the convolution's own last pass where it has one; otherwise this
    /// is exactly the composition of the recorded ops, so gradients are the same as theirs.
    public static func conv2dAffine(_ x: Tensor, weight: Tensor, bias: Tensor? = nil, stride: (Int, Int) = (1, 1),
                                    padding: Padding = .valid, dilation: (Int, Int) = (1, 1), groups: Int = 1,
                                    scale: Tensor, shift: Tensor, adding residual: Tensor? = nil,
                                    activation: BlockActivation = .identity) -> Tensor {
        let geo = convGeometry(x, weight: weight, bias: bias, stride: stride, padding: padding, dilation: dilation,
                               groups: groups)
        let (n, cout) = (x.shape[0], weight.shape[0])
        let shape = [n, cout, geo.oh, geo.ow]
        require(scale.shape == [cout] && shift.shape == [cout],
                "conv2dAffine: scale \(scale.shape) and shift \(shift.shape) must be [\(cout)] for weight \(weight.shape)")
        if let residual {
            require(residual.shape == shape, "conv2dAffine: residual \(residual.shape) does not match the output \(shape)")
        }
        let inputs = [x, weight, scale, shift] + [bias, residual].compactMap { $0 }
        guard !GradMode.isEnabled || !inputs.contains(where: \.requiresGrad) else {
            var y = channelAffine(convolution(x, weight, bias, geo), scale: scale, shift: shift)
            if let residual { y = y + residual }
            return activation(y)
        }
        let out = Storage(count: shape.product)
        guard out.count > 0 else { return Tensor(shape: shape, storage: out) }
        // A bias moves into the shift: (y + b)·a + s = y·a + (b·a + s).
        let folded = bias.map { b in
            let s = Storage(count: cout)
            for i in 0..<cout { s.pointer[i] = b.pointer[i] * scale.pointer[i] + shift.pointer[i] }
            return s
        }
        let bounds = activation.bounds
        let epilogue = ChannelEpilogue(scale: scale.pointer, shift: folded?.pointer ?? shift.pointer,
                                       residual: residual?.pointer, channels: cout, lo: bounds.lo, hi: bounds.hi)
        withExtendedLifetime((folded, residual, scale, shift)) {
            convolve(x, weight, geo, into: out.pointer, then: epilogue)
        }
        return Tensor(shape: shape, storage: out)
    }
}

/// What follows a convolution in an inference block, per output element of channel c at flat index i:
/// y = min(max(y · scale[c] + shift[c] + residual[i], lo), hi), residual optional.
struct ChannelEpilogue: @unchecked Sendable {
    let scale, shift: UnsafePointer<Float>
    let residual: UnsafePointer<Float>?
    let channels: Int
    let lo, hi: Float

    /// The same epilogue for the output that starts `offset` elements in.
    func advanced(by offset: Int) -> ChannelEpilogue {
        ChannelEpilogue(scale: scale, shift: shift, residual: residual.map { $0 + offset }, channels: channels,
                        lo: lo, hi: hi)
    }

    /// `count` elements of channel `channel` starting at `row`, flat index `offset` into the output.
    @inline(__always)
    func apply(to row: UnsafeMutablePointer<Float>, count: Int, channel: Int, at offset: Int) {
        let (a, b, lo, hi) = (scale[channel], shift[channel], lo, hi)
        if let residual {
            let r = residual + offset
            for i in 0..<count { row[i] = Swift.min(Swift.max(row[i] * a + b + r[i], lo), hi) }
        } else {
            for i in 0..<count { row[i] = Swift.min(Swift.max(row[i] * a + b, lo), hi) }
        }
    }

    /// Over the whole output: `planes` planes of `size` elements, plane p of channel p mod `channels`.
    func apply(to y: UnsafeMutablePointer<Float>, planes: Int, size: Int) {
        parallelChunks(planes, grain: Swift.max(1, (1 << 15) / Swift.max(size, 1))) { range in
            for p in range { apply(to: y + p * size, count: size, channel: p % channels, at: p * size) }
        }
    }
}
