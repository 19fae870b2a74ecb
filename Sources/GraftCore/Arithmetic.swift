/// Element-wise arithmetic with NumPy broadcasting. Gradients of broadcast operands are summed back to their shape.
extension Tensor {
    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let (shape, out) = broadcastBinary("add", a, b, Add())
        return result("add", shape, out, [a, b]) { g, needs in
            [needs[0] ? g.sumTo(a.shape) : nil, needs[1] ? g.sumTo(b.shape) : nil]
        }
    }

    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let (shape, out) = broadcastBinary("sub", a, b, Subtract())
        return result("sub", shape, out, [a, b]) { g, needs in
            [needs[0] ? g.sumTo(a.shape) : nil, needs[1] ? (-g).sumTo(b.shape) : nil]
        }
    }

    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let (shape, out) = broadcastBinary("mul", a, b, Multiply())
        return result("mul", shape, out, [a, b]) { g, needs in
            [needs[0] ? (g * b).sumTo(a.shape) : nil, needs[1] ? (g * a).sumTo(b.shape) : nil]
        }
    }

    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let (shape, out) = broadcastBinary("div", a, b, Divide())
        return result("div", shape, out, [a, b]) { g, needs in
            [needs[0] ? (g / b).sumTo(a.shape) : nil, needs[1] ? (-(g * a) / (b * b)).sumTo(b.shape) : nil]
        }
    }

    /// Element-wise maximum; where equal, the gradient goes to `a`.
    public static func maximum(_ a: Tensor, _ b: Tensor) -> Tensor {
        let (shape, out) = broadcastBinary("maximum", a, b, Maximum())
        return result("maximum", shape, out, [a, b]) { g, needs in
            let pickA = a.greaterEqual(b)
            return [needs[0] ? (g * pickA).sumTo(a.shape) : nil, needs[1] ? (g * (1 - pickA)).sumTo(b.shape) : nil]
        }
    }

    /// Element-wise minimum; where equal, the gradient goes to `a`.
    public static func minimum(_ a: Tensor, _ b: Tensor) -> Tensor {
        -maximum(-a, -b)
    }

    public static prefix func - (x: Tensor) -> Tensor {
        result("neg", x.shape, mapUnary(x, Negate()), [x]) { g, _ in [-g] }
    }

    public static func + (x: Tensor, s: Float) -> Tensor {
        result("add_scalar", x.shape, mapUnary(x, AddScalar(s: s)), [x]) { g, _ in [g] }
    }

    public static func * (x: Tensor, s: Float) -> Tensor {
        result("mul_scalar", x.shape, mapUnary(x, MultiplyScalar(s: s)), [x]) { g, _ in [g * s] }
    }

    public static func + (s: Float, x: Tensor) -> Tensor { x + s }
    public static func - (x: Tensor, s: Float) -> Tensor { x + (-s) }
    public static func - (s: Float, x: Tensor) -> Tensor { -x + s }
    public static func * (s: Float, x: Tensor) -> Tensor { x * s }
    public static func / (x: Tensor, s: Float) -> Tensor { x * (1 / s) }

    public static func / (s: Float, x: Tensor) -> Tensor {
        result("rdiv_scalar", x.shape, mapUnary(x, ScalarDivide(s: s)), [x]) { g, _ in [-(g * s) / (x * x)] }
    }
}

/// Comparisons give 0/1 masks that never require a gradient; `where` selects between two tensors by a mask.
extension Tensor {
    private func compare(_ op: String, _ other: Tensor, _ test: Comparison) -> Tensor {
        let (shape, out) = broadcastBinary(op, self, other, Compare(test: test))
        return Tensor(shape: shape, storage: out)
    }

    public func equal(_ other: Tensor) -> Tensor { compare("eq", other, .equal) }
    public func notEqual(_ other: Tensor) -> Tensor { compare("ne", other, .notEqual) }
    public func greater(_ other: Tensor) -> Tensor { compare("gt", other, .greater) }
    public func greaterEqual(_ other: Tensor) -> Tensor { compare("ge", other, .greaterEqual) }
    public func less(_ other: Tensor) -> Tensor { compare("lt", other, .less) }
    public func lessEqual(_ other: Tensor) -> Tensor { compare("le", other, .lessEqual) }

    public func greater(_ s: Float) -> Tensor { Tensor(shape: shape, storage: mapUnary(self, CompareScalar(test: .greater, s: s))) }
    public func less(_ s: Float) -> Tensor { Tensor(shape: shape, storage: mapUnary(self, CompareScalar(test: .less, s: s))) }

    /// `condition ? a : b` element-wise, with broadcasting over all three (`torch.where`).
    public static func `where`(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        let shape = broadcastShape(broadcastShape(condition.shape, a.shape, op: "where"), b.shape, op: "where")
        let mask = condition.detached().expand(shape)
        let x = withNoGrad { a.expand(shape) }, y = withNoGrad { b.expand(shape) }
        let out = Storage(count: shape.product)
        let pm = mask.pointer, px = x.pointer, py = y.pointer, po = out.pointer
        for i in 0..<out.count { po[i] = pm[i] != 0 ? px[i] : py[i] }
        return result("where", shape, out, [a, b]) { g, needs in
            [needs[0] ? (g * mask).sumTo(a.shape) : nil, needs[1] ? (g * (1 - mask)).sumTo(b.shape) : nil]
        }
    }
}
