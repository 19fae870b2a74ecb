extension Tensor {
    public convenience init(_ values: [Float], shape: [Int], requiresGrad: Bool = false) {
        require(values.count == shape.product,
                     "Tensor: \(values.count) values do not fill shape \(shape) (\(shape.product) elements)")
        self.init(shape: shape, storage: Storage(values), requiresGrad: requiresGrad)
    }

    /// A rank-0 tensor holding `value`.
    public convenience init(scalar value: Float, requiresGrad: Bool = false) {
        self.init([value], shape: [], requiresGrad: requiresGrad)
    }

    public static func full(_ shape: [Int], _ value: Float, requiresGrad: Bool = false) -> Tensor {
        Tensor(shape: shape, storage: Storage(repeating: value, count: shape.product), requiresGrad: requiresGrad)
    }

    public static func zeros(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        full(shape, 0, requiresGrad: requiresGrad)
    }

    public static func ones(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        full(shape, 1, requiresGrad: requiresGrad)
    }

    /// `start, start + step, …` below `end`, as `torch.arange`.
    public static func arange(_ start: Float = 0, _ end: Float, step: Float = 1) -> Tensor {
        require(step != 0, "arange: step must be non-zero")
        let n = Swift.max(0, Int(((end - start) / step).rounded(.up)))
        return Tensor((0..<n).map { start + Float($0) * step }, shape: [n])
    }

    /// Normal samples with the given mean and standard deviation.
    public static func randomNormal(_ shape: [Int], mean: Float = 0, std: Float = 1, using rng: inout RandomGenerator,
                                    requiresGrad: Bool = false) -> Tensor {
        let s = Storage(count: shape.product)
        for i in 0..<s.count { s.pointer[i] = mean + std * rng.nextNormal() }
        return Tensor(shape: shape, storage: s, requiresGrad: requiresGrad)
    }

    /// Uniform samples in [low, high).
    public static func randomUniform(_ shape: [Int], low: Float = 0, high: Float = 1, using rng: inout RandomGenerator,
                                     requiresGrad: Bool = false) -> Tensor {
        let s = Storage(count: shape.product)
        for i in 0..<s.count { s.pointer[i] = low + (high - low) * rng.nextUniform() }
        return Tensor(shape: shape, storage: s, requiresGrad: requiresGrad)
    }

    /// A copy with its own storage, recorded as identity when `self` requires a gradient.
    public func copy() -> Tensor {
        let s = Storage(count: count)
        s.pointer.update(from: pointer, count: count)
        return Tensor.result("copy", shape, s, [self]) { g, _ in [g] }
    }
}
