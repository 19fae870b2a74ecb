#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// The element-wise functions the kernels specialise on, one small type each.

struct Add: FloatFunction2 { func callAsFunction(_ a: Float, _ b: Float) -> Float { a + b } }
struct Subtract: FloatFunction2 { func callAsFunction(_ a: Float, _ b: Float) -> Float { a - b } }
struct Multiply: FloatFunction2 { func callAsFunction(_ a: Float, _ b: Float) -> Float { a * b } }
struct Divide: FloatFunction2 { func callAsFunction(_ a: Float, _ b: Float) -> Float { a / b } }
struct Maximum: FloatFunction2 { func callAsFunction(_ a: Float, _ b: Float) -> Float { Swift.max(a, b) } }
/// a where b > 0, else 0 (relu's backward).
struct PassWherePositive: FloatFunction2 { func callAsFunction(_ a: Float, _ b: Float) -> Float { b > 0 ? a : 0 } }

/// 1 where the comparison holds, else 0.
struct Compare: FloatFunction2 {
    let test: Comparison
    func callAsFunction(_ a: Float, _ b: Float) -> Float {
        let holds: Bool
        switch test {
        case .equal: holds = a == b
        case .notEqual: holds = a != b
        case .greater: holds = a > b
        case .greaterEqual: holds = a >= b
        case .less: holds = a < b
        case .lessEqual: holds = a <= b
        }
        return holds ? 1 : 0
    }
}

enum Comparison { case equal, notEqual, greater, greaterEqual, less, lessEqual }

struct Negate: FloatFunction1 { func callAsFunction(_ x: Float) -> Float { -x } }
struct AddScalar: FloatFunction1 { let s: Float; func callAsFunction(_ x: Float) -> Float { x + s } }
struct MultiplyScalar: FloatFunction1 { let s: Float; func callAsFunction(_ x: Float) -> Float { x * s } }
struct ScalarDivide: FloatFunction1 { let s: Float; func callAsFunction(_ x: Float) -> Float { s / x } }
struct CompareScalar: FloatFunction1 {
    let test: Comparison, s: Float
    func callAsFunction(_ x: Float) -> Float { Compare(test: test)(x, s) }
}
struct FiniteOrZero: FloatFunction1 { func callAsFunction(_ x: Float) -> Float { x.isFinite ? x : 0 } }
struct Log: FloatFunction1 { func callAsFunction(_ x: Float) -> Float { logf(x) } }
struct SquareRoot: FloatFunction1 { func callAsFunction(_ x: Float) -> Float { x.squareRoot() } }
struct Power: FloatFunction1 { let p: Float; func callAsFunction(_ x: Float) -> Float { powf(x, p) } }
struct Absolute: FloatFunction1 { func callAsFunction(_ x: Float) -> Float { Swift.abs(x) } }
struct Sign: FloatFunction1 { func callAsFunction(_ x: Float) -> Float { x > 0 ? 1 : (x < 0 ? -1 : 0) } }
struct HyperbolicTangent: FloatFunction1 { func callAsFunction(_ x: Float) -> Float { tanhf(x) } }
struct Sigmoid: FloatFunction8 {
    @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { 1 / (1 + exp8(-x)) }
}
struct Relu: FloatFunction1 { func callAsFunction(_ x: Float) -> Float { Swift.max(x, 0) } }
struct Clamp: FloatFunction1 {
    let lo: Float, hi: Float
    func callAsFunction(_ x: Float) -> Float { Swift.min(Swift.max(x, lo), hi) }
}
/// 1 inside [lo, hi] (ends included), else 0: where clamp passes its gradient.
struct InsideInterval: FloatFunction1 {
    let lo: Float, hi: Float
    func callAsFunction(_ x: Float) -> Float { x >= lo && x <= hi ? 1 : 0 }
}
/// GELU, exact erf form.
struct Gelu: FloatFunction8 {
    @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> { 0.5 * x * (1 + erf8(x * 0.70710678118654752)) }
}
/// d gelu / dx = Φ(x) + x·φ(x).
struct GeluDerivative: FloatFunction8 {
    @inline(__always) func callAsFunction(_ x: SIMD8<Float>) -> SIMD8<Float> {
        0.5 * (1 + erf8(x * 0.70710678118654752)) + x * 0.3989422804014327 * exp8(-0.5 * x * x)
    }
}
