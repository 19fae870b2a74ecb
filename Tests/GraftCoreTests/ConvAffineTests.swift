import Testing
@testable import GraftCore

/// `Tensor.conv2dAffine`: a convolution, inference-mode batch norm, a residual add and an activation in one op.
@Suite struct ConvAffine {
    /// One case of every kernel path: im2col GEMM (padded, strided, grouped), 1×1, depthwise and Winograd (three
    /// images, so two threads split them unevenly and each share's residual starts at its own offset).
    static let cases: [ConvCase] = ConvCase.all.filter {
        ["3×3 pad 1", "stride 2 unpadded", "groups 2", "depthwise", "1×1, batched"].contains($0.name)
    } + ConvCase.winograd

    @Test(arguments: cases)
    func fusedPassEqualsTheComposition(_ c: ConvCase) {
        let (x, w, b) = c.tensors()
        let cout = c.weight[0]
        // Scales up to 8 and shifts up to 7 push outputs past ReLU6's ceiling as well as below zero.
        let scale = sample([cout], seed: 5, low: -8, high: 8), shift = sample([cout], seed: 6, low: -4, high: 7)
        let plain = c.conv(x, w, b)
        let affine = Tensor.channelAffine(plain, scale: scale, shift: shift).scalars
        #expect(affine.contains { $0 > 6 } && affine.contains { $0 < 0 }, "the case never reaches both clamps")
        let residual = sample(plain.shape, seed: 7)
        for activation in [BlockActivation.identity, .relu, .relu6] {
            for add in [nil, residual] {
                var composed = Tensor.channelAffine(plain, scale: scale, shift: shift)
                if let add { composed = composed + add }
                composed = activation(composed)
                let fused = Tensor.conv2dAffine(x, weight: w, bias: b, stride: c.stride, padding: c.padding,
                                                dilation: c.dilation, groups: c.groups, scale: scale, shift: shift,
                                                adding: add, activation: activation)
                #expect(fused.shape == composed.shape)
                #expect(fused.gradFn == nil)
                expectClose(fused.scalars, composed.scalars, rtol: 1e-5, atol: 1e-5)
            }
        }
        #expect(Self.cases.count == 5 + ConvCase.winograd.count)
    }

    /// With any input that needs a gradient it records the composition; its gradients match finite differences
    /// (taken through the fused pass, which the objective runs without a graph).
    @Test(arguments: [ConvCase.all[0],
                      ConvCase(name: "Winograd 4×4", input: [1, 16, 4, 4], weight: [16, 16, 3, 3], padding: .symmetric(1, 1))])
    func gradientsMatchFiniteDifferences(_ c: ConvCase) {
        let (x, w, b) = c.tensors()
        let cout = c.weight[0]
        let scale = sample([cout], seed: 5), shift = sample([cout], seed: 6)
        let residual = sample(c.conv(x, w, b).shape, seed: 7)
        checkGradients([x, w, scale, shift, residual]) { t in
            Tensor.conv2dAffine(t[0], weight: t[1], bias: b, stride: c.stride, padding: c.padding,
                                dilation: c.dilation, groups: c.groups, scale: t[2], shift: t[3], adding: t[4])
        }
    }

    @Test func recordsAGraphOnlyWhenAskedTo() {
        let c = ConvCase.all[0]
        let (x, w, _) = c.tensors()
        let (scale, shift) = (sample([c.weight[0]], seed: 5), sample([c.weight[0]], seed: 6))
        let call = { Tensor.conv2dAffine(x, weight: w, padding: c.padding, scale: scale, shift: shift, activation: .relu) }
        #expect(call().gradFn == nil)
        scale.requiresGrad = true
        #expect(call().gradFn != nil)
        #expect(withNoGrad(call).gradFn == nil)
    }
}
