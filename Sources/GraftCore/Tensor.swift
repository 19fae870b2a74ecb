/// An n-dimensional array of Float32, row-major and always contiguous, that can take part in reverse-mode autograd.
///
/// Tensors are values by convention: ops return new tensors. The one sanctioned in-place write is an optimizer
/// updating a leaf parameter's `storage` between steps.
public final class Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let storage: Storage
    /// The recorded op that produced this tensor; nil for leaves and for results computed without recording.
    public let gradFn: Node?
    /// Accumulated gradient of a leaf after `backward()`; treat it as immutable (it may share storage).
    public var grad: Tensor?
    var leafRequiresGrad: Bool

    public init(shape: [Int], storage: Storage, requiresGrad: Bool = false) {
        require(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in shape \(shape)")
        require(shape.product == storage.count,
                     "Tensor: shape \(shape) needs \(shape.product) elements, storage holds \(storage.count)")
        self.shape = shape
        self.storage = storage
        self.gradFn = nil
        self.leafRequiresGrad = requiresGrad
    }

    init(shape: [Int], storage: Storage, gradFn: Node) {
        self.shape = shape
        self.storage = storage
        self.gradFn = gradFn
        self.leafRequiresGrad = false
    }

    /// True for leaves marked trainable and for every result recorded on the tape.
    public var requiresGrad: Bool {
        get { leafRequiresGrad || gradFn != nil }
        set {
            require(gradFn == nil, "requiresGrad can only be set on a leaf tensor (this one comes from \(gradFn!.name))")
            leafRequiresGrad = newValue
        }
    }

    public var isLeaf: Bool { gradFn == nil }
    public var rank: Int { shape.count }
    public var count: Int { storage.count }
    public var pointer: UnsafeMutablePointer<Float> { storage.pointer }
    public var scalars: [Float] { Array(storage.buffer) }

    /// The value of a one-element tensor.
    public var item: Float {
        require(count == 1, "item: tensor of shape \(shape) has \(count) elements, not 1")
        return pointer[0]
    }

    /// A leaf sharing this tensor's storage, cut from the tape.
    public func detached() -> Tensor { Tensor(shape: shape, storage: storage) }

    /// Resolves a possibly negative axis against this tensor's rank.
    public func axis(_ a: Int, op: String) -> Int {
        let r = a < 0 ? a + rank : a
        require(r >= 0 && r < rank, "\(op): axis \(a) out of range for shape \(shape)")
        return r
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = scalars.prefix(16).map { "\($0)" }.joined(separator: ", ")
        return "Tensor\(shape)[\(shown)\(count > 16 ? ", …" : "")]"
    }
}

extension Array where Element == Int {
    /// The product of the elements (1 for an empty shape).
    public var product: Int { reduce(1, *) }

    /// Row-major strides of a shape.
    public var strides: [Int] {
        var s = [Int](repeating: 1, count: count)
        var acc = 1
        for i in indices.reversed() { s[i] = acc; acc *= self[i] }
        return s
    }
}
