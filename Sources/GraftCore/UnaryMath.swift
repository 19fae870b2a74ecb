#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The op's own output inside its backward rule: the saved values as a constant for ordinary training, or
/// recomputed on the tape when the rule is being recorded, so higher-order gradients see its dependence on x.
@inline(__always)
func savedOutput(_ shape: [Int], _ storage: Storage, recompute: () -> Tensor) -> Tensor {
    GradMode.isEnabled ? recompute() : Tensor(shape: shape, storage: storage)
}

extension Tensor {
    public func exp() -> Tensor {
        let out = Storage(count: count)
        let px = pointer, po = out.pointer
        parallelChunks(count, grain: 1 << 15) { r in expShifted(px + r.lowerBound, po + r.lowerBound, r.count, shift: 0) }
        return Tensor.result("exp", shape, out, [self]) { g, _ in
            [g * savedOutput(self.shape, out) { self.exp() }]
        }
    }

    public func log() -> Tensor {
        Tensor.result("log", shape, mapUnary(self, Log()), [self]) { g, _ in [g / self] }
    }

    public func sqrt() -> Tensor {
        let out = mapUnary(self, SquareRoot())
        return Tensor.result("sqrt", shape, out, [self]) { g, _ in
            [g * 0.5 / savedOutput(self.shape, out) { self.sqrt() }]
        }
    }

    /// x^p for a constant exponent.
    public func pow(_ p: Float) -> Tensor {
        if p == 2 { return self * self }
        return Tensor.result("pow", shape, mapUnary(self, Power(p: p)), [self]) { g, _ in
            [g * p * self.pow(p - 1)]
        }
    }

    public func abs() -> Tensor {
        Tensor.result("abs", shape, mapUnary(self, Absolute()), [self]) { g, _ in [g * self.sign()] }
    }

    /// -1, 0 or 1; a constant (no gradient).
    public func sign() -> Tensor {
        Tensor(shape: shape, storage: mapUnary(self, Sign()))
    }

    public func tanh() -> Tensor {
        let out = mapUnary(self, HyperbolicTangent())
        return Tensor.result("tanh", shape, out, [self]) { g, _ in
            let y = savedOutput(self.shape, out) { self.tanh() }
            return [g * (1 - y * y)]
        }
    }

    public func sigmoid() -> Tensor {
        let out = mapUnary(self, Sigmoid())
        return Tensor.result("sigmoid", shape, out, [self]) { g, _ in
            let y = savedOutput(self.shape, out) { self.sigmoid() }
            return [g * y * (1 - y)]
        }
    }

    public func relu() -> Tensor {
        Tensor.result("relu", shape, mapUnary(self, Relu()), [self]) { g, _ in [g.passing(where: self)] }
    }

    /// self where `x` > 0, else 0: relu's backward in one pass. Linear in self, so its own gradient is the same
    /// masking; `x` gets none (relu is piecewise linear).
    func passing(where x: Tensor) -> Tensor {
        let (shape, out) = broadcastBinary("relu_backward", self, x, PassWherePositive())
        return Tensor.result("relu_backward", shape, out, [self]) { g, _ in [g.passing(where: x)] }
    }

    /// min(max(x, 0), 6), as in MobileNet and EfficientNet-Lite.
    public func relu6() -> Tensor { clamp(min: 0, max: 6) }

    /// Clamps into [min, max]; the gradient passes where the input lies inside the interval (ends included).
    public func clamp(min lo: Float = -.infinity, max hi: Float = .infinity) -> Tensor {
        require(lo <= hi, "clamp: min \(lo) is above max \(hi)")
        return Tensor.result("clamp", shape, mapUnary(self, Clamp(lo: lo, hi: hi)), [self]) { g, _ in
            let inside = withNoGrad { Tensor(shape: self.shape, storage: mapUnary(self, InsideInterval(lo: lo, hi: hi))) }
            return [g * inside]
        }
    }

    /// GELU with the exact erf form, as BERT and `torch.nn.GELU()` use.
    public func gelu() -> Tensor {
        let out = mapUnary(self, Gelu())
        return Tensor.result("gelu", shape, out, [self]) { g, _ in [g.timesGeluDerivative(of: self)] }
    }

    /// self · gelu′(x) in one pass: gelu's backward, self being the output gradient (x's shape).
    func timesGeluDerivative(of x: Tensor) -> Tensor {
        require(shape == x.shape, "gelu backward: gradient \(shape) does not match input \(x.shape)")
        let out = mapUnary(x, GeluDerivative(), times: self)
        return Tensor.result("gelu_backward", shape, out, [self, x]) { h, needs in
            [needs[0] ? h * x.geluDerivative() : nil,
             needs[1] ? h * self * x.geluSecondDerivative() : nil]
        }
    }

    /// d gelu / dx = Φ(x) + x·φ(x); its own derivative is φ(x)·(2 − x²).
    func geluDerivative() -> Tensor {
        let out = mapUnary(self, GeluDerivative())
        return Tensor.result("gelu_derivative", shape, out, [self]) { g, _ in [g * self.geluSecondDerivative()] }
    }

    /// gelu″(x) = φ(x)·(2 − x²), composed (so differentiable again).
    func geluSecondDerivative() -> Tensor {
        (self * self * -0.5).exp() * 0.3989422804014327 * (2 - self * self)
    }
}
