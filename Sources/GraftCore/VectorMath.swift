/// Vectorised exp for the element-wise and softmax kernels: libm's expf is scalar and ~4× slower.
/// Cephes' method: x = n·ln2 + r with |r| ≤ ln2/2, a degree-7 polynomial for e^r, and 2^n put into the exponent
/// bits. Relative error under 2e-7 over the float range; overflow gives +inf, underflow 0, NaN stays NaN.
/// Transparent, not `@inline(__always)`: with that, the masked softmax still called it once per eight floats,
/// passing the vector in two halves (MiniLM-L6's forward 3–6 % slower).
@_transparent
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

/// max over x[0..<n] (−∞ when empty), eight lanes at a time: a scalar max loop carries one dependency chain that the
/// compiler may not split, since max is not reassociated for floats.
@inline(__always)
func rowMax(_ x: UnsafePointer<Float>, _ n: Int) -> Float {
    var i = 0, acc = SIMD8<Float>(repeating: -.infinity)
    while i + 8 <= n {
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
        acc.replace(with: v, where: v .> acc)
        i += 8
    }
    var m = lanesMax(acc)
    while i < n { m = Swift.max(m, x[i]); i += 1 }
    return m
}

@inline(__always)
private func lanesMax(_ v: SIMD8<Float>) -> Float {
    let a = pointwiseMaxHalf(v.lowHalf, v.highHalf)
    return Swift.max(Swift.max(a[0], a[1]), Swift.max(a[2], a[3]))
}

@inline(__always)
private func pointwiseMaxHalf(_ a: SIMD4<Float>, _ b: SIMD4<Float>) -> SIMD4<Float> { a.replacing(with: b, where: b .> a) }

/// y = x + a over n floats, returning max(y) as `rowMax` does.
@inline(__always)
func addRowMax(_ x: UnsafePointer<Float>, _ a: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) -> Float {
    var i = 0, acc = SIMD8<Float>(repeating: -.infinity)
    while i + 8 <= n {
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD8<Float>.self)
            + UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self)
        UnsafeMutableRawPointer(y + i).storeBytes(of: v, as: SIMD8<Float>.self)
        acc.replace(with: v, where: v .> acc)
        i += 8
    }
    var m = lanesMax(acc)
    while i < n {
        y[i] = x[i] + a[i]
        m = Swift.max(m, y[i])
        i += 1
    }
    return m
}

/// erf on eight lanes as a rational function of x (odd degree-13 numerator, even degree-8 denominator, x clamped to
/// [−4, 4]); absolute error under 4e-7 in Float (3 ulp near ±1). Pure arithmetic, unlike libm's scalar erff.
@inline(__always)
func erf8(_ x: SIMD8<Float>) -> SIMD8<Float> {
    var x = x
    x.replace(with: 4, where: x .> 4)
    x.replace(with: -4, where: x .< -4)
    let x2 = x * x
    var p = SIMD8<Float>(repeating: -2.72614225801306e-10)
    p = p * x2 + 2.77068142495902e-08
    p = p * x2 - 2.10102402082508e-06
    p = p * x2 - 5.69250639462346e-05
    p = p * x2 - 7.34990630326855e-04
    p = p * x2 - 2.95459980854025e-03
    p = p * x2 - 1.60960333262415e-02
    var q = SIMD8<Float>(repeating: -1.45660718464996e-05)
    q = q * x2 - 2.13374055278905e-04
    q = q * x2 - 1.68282697438203e-03
    q = q * x2 - 7.37332916720468e-03
    q = q * x2 - 1.42647390514189e-02
    return x * p / q
}

/// p[0], p[s], …, p[7s]. Stride 1 and 2 are one and two vector loads, which read up to p[7s + s − 1]: the caller
/// must own that much (`stridedLoadReach`); other strides gather lane by lane.
@inline(__always)
func loadStrided8(_ p: UnsafePointer<Float>, stride s: Int) -> SIMD8<Float> {
    switch s {
    case 1: return UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    case 2: return UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self).evenHalf
    default:
        var v = SIMD8<Float>()
        for l in 0..<8 { v[l] = p[l * s] }
        return v
    }
}

/// How many floats from p `loadStrided8(p, stride: s)` reads.
@inline(__always)
func stridedLoadReach(_ s: Int) -> Int { s <= 2 ? 8 * s : 7 * s + 1 }

/// dst[i] = src[i · s] for i in `valid` and 0 for the other i in 0..<n (an im2col row: the taps that land in the
/// padding read zeros). Windows of eight with the lanes outside `valid` masked, loading only inside `bounds`; the
/// last window slides back to end at n, and a row too short or too near the bounds goes element by element.
@inline(__always)
func gatherStrided(_ dst: UnsafeMutablePointer<Float>, _ src: UnsafePointer<Float>, count n: Int, valid: Range<Int>,
                   stride s: Int, bounds: Range<UnsafePointer<Float>>) {
    var i = 0
    while i < n {
        let first = Swift.min(i, n - 8), p = src + first * s
        guard first >= 0, p >= bounds.lowerBound, p + stridedLoadReach(s) <= bounds.upperBound else { break }
        let v = loadStrided8(p, stride: s).replacing(with: 0, where: .!lanes(first, inside: valid))
        UnsafeMutableRawPointer(dst + first).storeBytes(of: v, as: SIMD8<Float>.self)
        i = first + 8
    }
    while i < n { dst[i] = valid.contains(i) ? src[i * s] : 0; i += 1 }
}

/// dst[j · dstStride + i] = src[i · srcStride + j] for i < rows, j < columns: 8×8 blocks through registers, the
/// edges element by element. (Between NCHW planes and channels-last rows, a lane-by-lane copy reads or writes one
/// float per cache line.)
func transpose(_ src: UnsafePointer<Float>, stride srcStride: Int, rows: Int, columns: Int,
               into dst: UnsafeMutablePointer<Float>, stride dstStride: Int) {
    let fullRows = rows / 8 * 8, fullColumns = columns / 8 * 8
    for i in stride(from: 0, to: fullRows, by: 8) {
        for j in stride(from: 0, to: fullColumns, by: 8) {
            transpose8x8(src + i * srcStride + j, srcStride, dst + j * dstStride + i, dstStride)
        }
        for j in fullColumns..<columns {
            for k in i..<(i + 8) { dst[j * dstStride + k] = src[k * srcStride + j] }
        }
    }
    for i in fullRows..<rows {
        for j in 0..<columns { dst[j * dstStride + i] = src[i * srcStride + j] }
    }
}

/// One 8×8 block: rows loaded as vectors, then three perfect unshuffles of the 64 floats (evens, then odds), each
/// rotating the six bits of the index (row, column) by one, so three swap row and column.
@inline(__always)
private func transpose8x8(_ src: UnsafePointer<Float>, _ srcStride: Int, _ dst: UnsafeMutablePointer<Float>,
                          _ dstStride: Int) {
    var r = InlineArray<8, SIMD8<Float>>(repeating: .zero)
    for k in 0..<8 { r[k] = UnsafeRawPointer(src + k * srcStride).loadUnaligned(as: SIMD8<Float>.self) }
    for _ in 0..<3 {
        let old = r
        for k in 0..<4 {
            let pair = SIMD16(lowHalf: old[2 * k], highHalf: old[2 * k + 1])
            r[k] = pair.evenHalf
            r[k + 4] = pair.oddHalf
        }
    }
    for k in 0..<8 { UnsafeMutableRawPointer(dst + k * dstStride).storeBytes(of: r[k], as: SIMD8<Float>.self) }
}

/// Which of the eight indices first, first + 1, …, first + 7 lie in `range`. Compared as floats (exact for any
/// index under 2²⁴): Swift's integer vector comparisons compile to a loop over the lanes here.
@inline(__always)
func lanes(_ first: Int, inside range: Range<Int>) -> SIMDMask<SIMD8<Int32>> {
    let index = SIMD8<Float>(0, 1, 2, 3, 4, 5, 6, 7) + Float(first)
    return (index .>= Float(range.lowerBound)) .& (index .< Float(range.upperBound))
}
