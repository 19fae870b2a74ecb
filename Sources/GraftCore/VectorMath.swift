/// Vectorised exp for the element-wise and softmax kernels: libm's expf is scalar and ~4× slower.
/// Cephes' method: x = n·ln2 + r with |r| ≤ ln2/2, a degree-7 polynomial for e^r, and 2^n put into the exponent
/// bits. Relative error under 2e-7 over the float range; overflow gives +inf, underflow 0, NaN stays NaN.
@inline(__always)
func exp8(_ x: SIMD8<Float>) -> SIMD8<Float> {
    // Mask selects, not pointwiseMin/Max: those stay calls and cost more than the polynomial.
    var clamped = x
    clamped.replace(with: 88.72283, where: x .> 88.72283)
    clamped.replace(with: -87.33654, where: x .< -87.33654)
    // Adding 1.5·2^23 rounds to the nearest integer and leaves it in the low mantissa bits.
    let shifted = clamped * 1.44269504088896341 + 12582912
    let n = shifted - 12582912
    let r = clamped - n * 0.693359375 + n * 2.12194440e-4
    var p = SIMD8<Float>(repeating: 1.9875691500e-4)
    p = p * r + 1.3981999507e-3
    p = p * r + 8.3334519073e-3
    p = p * r + 4.1665795894e-2
    p = p * r + 1.6666665459e-1
    p = p * r + 5.0000001201e-1
    p = p * r * r + r + 1
    // 2^n in two halves, so n = 128 (x near the top) and n = -127 (the bottom) stay representable.
    let ni = unsafeBitCast(shifted, to: SIMD8<Int32>.self) &- 0x4B40_0000, half = ni &>> 1
    let lo = unsafeBitCast((half &+ 127) &<< 23, to: SIMD8<Float>.self)
    let hi = unsafeBitCast((ni &- half &+ 127) &<< 23, to: SIMD8<Float>.self)
    var y = p * lo * hi
    y.replace(with: Float.infinity, where: x .> 88.72283)
    y.replace(with: Float(0), where: x .< -87.33654)
    y.replace(with: x, where: x .!= x)
    return y
}

/// Scalar exp with the same results as `exp8`, for loop tails.
@inline(__always)
func exp1(_ x: Float) -> Float { exp8(SIMD8(repeating: x))[0] }

/// y[i] = exp(x[i] − shift) for n contiguous floats; returns their sum (softmax's denominator).
@inline(__always)
@discardableResult
func expShifted(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int, shift: Float) -> Float {
    var i = 0, acc = SIMD8<Float>()
    while i + 8 <= n {
        let e = exp8(UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self) - shift)
        UnsafeMutableRawPointer(y + i).storeBytes(of: e, as: SIMD8<Float>.self)
        acc += e
        i += 8
    }
    var s = acc.sum()
    while i < n { y[i] = exp1(x[i] - shift); s += y[i]; i += 1 }
    return s
}
