import Testing
import GraftCore
import GraftNN
import GraftMeta

/// The functional models: parity with GraftNN, shapes, and batch norm on batch statistics.
@Suite struct ModelTests {
    /// From the same generator, MetaMLP draws GraftNN's MLP parameters under the same names and computes the same
    /// function; substituted parameters are the ones used.
    @Test func metaMLPMatchesMLP() {
        var a = RandomGenerator(seed: 31), b = RandomGenerator(seed: 31)
        let meta = MetaMLP(sizes: [4, 7, 3], using: &a), mlp = MLP(sizes: [4, 7, 3], using: &b)
        #expect(meta.parameters.map(\.0) == mlp.namedParameters().map(\.0))
        #expect(meta.parameters.map(\.1.scalars) == mlp.namedParameters().map(\.1.scalars))
        #expect(meta.parameters.allSatisfy { $0.1.requiresGrad })
        let x = Tensor.randomNormal([5, 4], using: &a)
        #expect(meta(x).scalars == mlp(x).scalars)
        let zeros = meta.parameterTensors.map { Tensor.zeros($0.shape) }
        #expect(meta(x, parameters: zeros).scalars == [Float](repeating: 0, count: 15))
        #expect(meta.parameterCount == 4 * 7 + 7 + 7 * 3 + 3)
    }

    @Test func conv4ShapesFor28And84() {
        var rng = RandomGenerator(seed: 2)
        let omniglot = Conv4(inputChannels: 1, imageSize: 28, outputs: 5, using: &rng)
        #expect(omniglot.featureCount == 64)
        let small = Tensor.randomNormal([3, 1, 28, 28], using: &rng)
        #expect(omniglot(small).shape == [3, 5])
        #expect(omniglot.features(small, parameters: omniglot.parameterTensors).shape == [3, 64])
        #expect(omniglot.parameters.map(\.0) == (0..<4).flatMap {
            ["blocks.\($0).conv.weight", "blocks.\($0).norm.weight", "blocks.\($0).norm.bias"]
        } + ["head.weight", "head.bias"])
        #expect(omniglot.parameters[0].1.shape == [64, 1, 3, 3] && omniglot.parameters[3].1.shape == [64, 64, 3, 3])
        #expect(omniglot.parameters[12].1.shape == [5, 64])

        let embedding = Conv4(inputChannels: 3, imageSize: 84, outputs: nil, using: &rng)
        #expect(embedding.featureCount == 1600 && embedding.parameters.count == 12)
        let large = Tensor.randomNormal([2, 3, 84, 84], using: &rng)
        #expect(embedding(large).shape == [2, 1600])
        let classifier = Conv4(inputChannels: 3, filters: 32, imageSize: 84, outputs: 5, using: &rng)
        #expect(classifier.featureCount == 800)
        #expect(classifier(large).shape == [2, 5])
    }

    /// With the default scale 1 and shift 0, each channel of a block's normalised convolution has mean 0 and variance 1
    /// over the batch, whatever the batch's own scale: the statistics are the batch's, not running ones.
    @Test func conv4NormalisesWithBatchStatistics() {
        var rng = RandomGenerator(seed: 6)
        let model = Conv4(inputChannels: 2, filters: 5, imageSize: 16, outputs: nil, using: &rng)
        let x = Tensor.randomNormal([4, 2, 16, 16], using: &rng)
        let theta = model.parameterTensors
        let z = model.normalizedConvolution(0, x, parameters: theta)
        let mean = z.mean(axes: [0, 2, 3]).scalars, variance = z.variance(axes: [0, 2, 3], correction: 0).scalars
        expectClose(mean, [Float](repeating: 0, count: 5), atol: 1e-5, "channel means")
        expectClose(variance, [Float](repeating: 1, count: 5), rtol: 1e-3, atol: 1e-4, "channel variances")
        // A batch three times larger normalises to the same values (an offset would not carry through the
        // convolution's zero padding as an offset, so only the scale is tried).
        let scaled = model.normalizedConvolution(0, x * 3, parameters: theta)
        expectClose(scaled.scalars, z.scalars, rtol: 1e-4, atol: 1e-4, "normalised output of 3x")
        // Scale and shift are applied after normalisation.
        var affine = theta
        affine[1] = Tensor.full([5], 2)
        affine[2] = Tensor.full([5], -1)
        expectClose(model.normalizedConvolution(0, x, parameters: affine).scalars, z.scalars.map { 2 * $0 - 1 },
                    rtol: 1e-5, atol: 1e-5, "affine")
        // Transductive: an image's embedding depends on the rest of its batch.
        let alone = model(x.slice(axis: 0, 0..<2)).slice(axis: 0, 0..<1).scalars
        #expect(alone != model(x).slice(axis: 0, 0..<1).scalars)
    }
}
