import GraftCore

/// Transforms then a normalisation, applied row by row to images [N, C, H, W] of 0–255 values: a recipe's train or
/// eval pipeline.
///
/// Randomness comes from (seed, epoch, row index) alone: row r of epoch e draws from
/// `RandomGenerator(seed:).split(salt).split(e).split(r)`, so a row is transformed the same way whichever rank
/// holds it and however the rows are split, and differently each epoch.
public struct ImagePipeline: Sendable, Equatable {
    public var transforms: [ImageTransform]
    public var normalization: Normalization

    public init(_ transforms: [ImageTransform] = [], normalization: Normalization = .none) {
        (self.transforms, self.normalization) = (transforms, normalization)
    }

    /// Whether any transform is random: such a pipeline runs at batch time, every epoch; the others run once.
    public var isRandom: Bool { transforms.contains(where: \.isRandom) }

    /// The shape [C, H, W] of a row of `shape` after the pipeline, or the first step that cannot take it.
    public func outputShape(_ shape: [Int]) -> Result<[Int], DataError.Problem> {
        guard shape.count == 3 else { return .failure(.init("transforms need images [channels, height, width], got rows of \(shape)")) }
        var current = shape
        for t in transforms {
            switch t.outputShape(current) {
            case let .success(next): current = next
            case let .failure(problem): return .failure(problem)
            }
        }
        guard normalization.accepts(channels: current[0]) else {
            return .failure(.init("the normalisation needs \(normalization.mean.count) channels (\(normalization.bgr ? "RGB" : "one value each")), the images have \(current[0]); add grayscale: {channels: 3} to the transforms"))
        }
        return .success(current)
    }

    /// The generator row `row` of epoch `epoch` draws from.
    public static func generator(seed: UInt64, epoch: Int, row: Int) -> RandomGenerator {
        RandomGenerator(seed: seed).split(0x6175_676D).split(UInt64(epoch)).split(UInt64(row))
    }

    /// `inputs` [n, C, H, W] (row i being data-set row `rows[i]`) through the transforms and the normalisation:
    /// [n, C′, H′, W′]. Works without recording a tape: the inputs are data, not parameters.
    public func apply(_ inputs: Tensor, rows: [Int], seed: UInt64, epoch: Int) -> Tensor {
        require(inputs.rank == 4 && inputs.shape[0] == rows.count,
                "ImagePipeline.apply: \(rows.count) row ids for inputs \(inputs.shape)")
        guard case let .success(shape) = outputShape(Array(inputs.shape.dropFirst())) else {
            preconditionFailure("ImagePipeline.apply: rows of \(inputs.shape.dropFirst()) do not fit the pipeline")
        }
        let inPlane = inputs.shape.dropFirst().reduce(1, *), outPlane = shape.reduce(1, *)
        let out = Storage(count: rows.count * outPlane)
        let source = inputs.scalars
        for (i, row) in rows.enumerated() {
            var rng = ImagePipeline.generator(seed: seed, epoch: epoch, row: row)
            var image = FloatImage(channels: inputs.shape[1], height: inputs.shape[2], width: inputs.shape[3],
                                   values: Array(source[(i * inPlane)..<((i + 1) * inPlane)]))
            for t in transforms { image = t.apply(image, using: &rng) }
            normalization.write(image, to: out.pointer + i * outPlane)
        }
        return Tensor(shape: [rows.count] + shape, storage: out)
    }
}
