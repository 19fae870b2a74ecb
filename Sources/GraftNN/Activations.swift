import GraftCore

/// A parameter-free layer applying a function, so activations and pools can sit in a `Sequential`.
public final class Lambda: Module, UnaryLayer {
    public let name: String
    private let body: @Sendable (Tensor) -> Tensor

    public init(_ name: String, _ body: @escaping @Sendable (Tensor) -> Tensor) {
        self.name = name
        self.body = body
    }

    public func callAsFunction(_ x: Tensor) -> Tensor { body(x) }
}

/// The parameter-free layers of `torch.nn`, as `Lambda`s named after them.
public enum Layers {
    public static func relu() -> Lambda { Lambda("ReLU") { $0.relu() } }
    public static func relu6() -> Lambda { Lambda("ReLU6") { $0.relu6() } }
    public static func gelu() -> Lambda { Lambda("GELU") { $0.gelu() } }
    public static func tanh() -> Lambda { Lambda("Tanh") { $0.tanh() } }
    public static func sigmoid() -> Lambda { Lambda("Sigmoid") { $0.sigmoid() } }

    /// Flattens axes from `start` on (`torch.nn.Flatten(start_dim=1)` by default).
    public static func flatten(from start: Int = 1) -> Lambda { Lambda("Flatten") { $0.flattened(from: start) } }

    public static func maxPool2d(kernel: Int, stride: Int? = nil, padding: Int = 0) -> Lambda {
        Lambda("MaxPool2d") {
            $0.maxPool2d(kernel: (kernel, kernel), stride: (stride ?? kernel, stride ?? kernel), padding: .symmetric(padding, padding))
        }
    }

    public static func avgPool2d(kernel: Int, stride: Int? = nil, padding: Int = 0) -> Lambda {
        Lambda("AvgPool2d") {
            $0.avgPool2d(kernel: (kernel, kernel), stride: (stride ?? kernel, stride ?? kernel), padding: .symmetric(padding, padding))
        }
    }

    public static func adaptiveAvgPool2d(_ size: (Int, Int)) -> Lambda {
        let (h, w) = size
        return Lambda("AdaptiveAvgPool2d") { $0.adaptiveAvgPool2d((h, w)) }
    }
}
