/// The arithmetic of Winograd's F(4×4, 3×3) on one tile, for V.scalarCount channels at a time (SIMD16, or SIMD8 for
/// a remainder): the kernel, input and output transforms of Lavin & Gray and the adjoints the weight gradient needs.
/// Each tile function keeps its intermediate vectors in `scratch` (`tileScratchBytes`).

/// G g for one column (g0, g1, g2) of a 3×3 kernel: the six rows of the kernel transform.
@inline(__always)
private func kernelRows<V: SIMD>(_ g0: V, _ g1: V, _ g2: V) -> (V, V, V, V, V, V) where V.Scalar == Float {
    let a = -(g0 + g1 + g2) / 6, b = -(g0 - g1 + g2) / 6
    let c = g0 / 24 + g1 / 12 + g2 / 6, d = g0 / 24 - g1 / 12 + g2 / 6
    return (g0 / 4, a, b, c, d, g2)
}

/// G g Gᵀ for V.scalarCount kernels, tap t of each at taps + t · tapStride; entry k goes to out + k · stride.
@inline(__always)
func kernelTile<V: SIMD>(_ taps: UnsafePointer<Float>, _ tapStride: Int, _ out: UnsafeMutablePointer<Float>,
                                 _ stride: Int, _: V.Type, _ scratch: UnsafeMutableRawPointer) where V.Scalar == Float {
    do {
        let t = scratch.bindMemory(to: V.self, capacity: 18)
        for b in 0..<3 {
            let c = taps + b * tapStride
            let r = kernelRows(load(c, V.self), load(c + 3 * tapStride, V.self), load(c + 6 * tapStride, V.self))
            (t[b], t[3 + b], t[6 + b], t[9 + b], t[12 + b], t[15 + b]) = r
        }
        for k in 0..<6 {
            let r = kernelRows(t[k * 3], t[k * 3 + 1], t[k * 3 + 2])
            let o = out + k * 6 * stride
            store(r.0, o); store(r.1, o + stride); store(r.2, o + 2 * stride)
            store(r.3, o + 3 * stride); store(r.4, o + 4 * stride); store(r.5, o + 5 * stride)
        }
    }
}

/// Gᵀ u for one column u0…u5 of a transformed kernel: the adjoint of `kernelRows`.
@inline(__always)
private func kernelAdjointRows<V: SIMD>(_ u0: V, _ u1: V, _ u2: V, _ u3: V, _ u4: V, _ u5: V) -> (V, V, V)
where V.Scalar == Float {
    let s = u1 + u2, d = u2 - u1, p = u3 + u4, q = u3 - u4
    return (u0 / 4 - s / 6 + p / 24, d / 6 + q / 12, -s / 6 + p / 6 + u5)
}

/// A g for one column g0…g3 of an output-gradient patch: the adjoint of `outputRows`.
@inline(__always)
private func gradientRows<V: SIMD>(_ g0: V, _ g1: V, _ g2: V, _ g3: V) -> (V, V, V, V, V, V) where V.Scalar == Float {
    let even = g0 + g2, odd = g1 + g3, even4 = g0 + 4 * g2, odd2 = 2 * g1 + 8 * g3
    return (g0, even + odd, even - odd, even4 + odd2, even4 - odd2, g3)
}

/// Gᵀ u G for V.scalarCount kernels, entry k of each at u + k · stride; tap t goes to taps + t · tapStride.
@inline(__always)
func kernelAdjointTile<V: SIMD>(_ u: UnsafePointer<Float>, _ stride: Int, _ taps: UnsafeMutablePointer<Float>,
                                        _ tapStride: Int, _: V.Type, _ scratch: UnsafeMutableRawPointer) where V.Scalar == Float {
    do {
        let t = scratch.bindMemory(to: V.self, capacity: 18)
        for j in 0..<6 {
            let c = u + j * stride
            let r = kernelAdjointRows(load(c, V.self), load(c + 6 * stride, V.self), load(c + 12 * stride, V.self),
                                      load(c + 18 * stride, V.self), load(c + 24 * stride, V.self),
                                      load(c + 30 * stride, V.self))
            (t[j], t[6 + j], t[12 + j]) = r
        }
        for a in 0..<3 {
            let r = kernelAdjointRows(t[a * 6], t[a * 6 + 1], t[a * 6 + 2], t[a * 6 + 3], t[a * 6 + 4], t[a * 6 + 5])
            let o = taps + a * 3 * tapStride
            store(r.0, o); store(r.1, o + tapStride); store(r.2, o + 2 * tapStride)
        }
    }
}

/// One tile's A g Aᵀ for V.scalarCount channels of a 4×4 gradient patch; entry k goes to out + k · stride.
@inline(__always)
func gradientTile<V: SIMD>(_ g: UnsafePointer<Float>, rowStride: Int, columnStride: Int,
                                   _ out: UnsafeMutablePointer<Float>, _ stride: Int, _: V.Type, _ scratch: UnsafeMutableRawPointer) where V.Scalar == Float {
    do {
        let t = scratch.bindMemory(to: V.self, capacity: 24)
        for j in 0..<4 {
            let c = g + j * columnStride
            let r = gradientRows(load(c, V.self), load(c + rowStride, V.self), load(c + 2 * rowStride, V.self),
                                 load(c + 3 * rowStride, V.self))
            (t[j], t[4 + j], t[8 + j], t[12 + j], t[16 + j], t[20 + j]) = r
        }
        for i in 0..<6 {
            let r = gradientRows(t[i * 4], t[i * 4 + 1], t[i * 4 + 2], t[i * 4 + 3])
            let o = out + i * 6 * stride
            store(r.0, o); store(r.1, o + stride); store(r.2, o + 2 * stride)
            store(r.3, o + 3 * stride); store(r.4, o + 4 * stride); store(r.5, o + 5 * stride)
        }
    }
}

/// Bᵀ d for one column d0…d5 of an input patch.
@inline(__always)
private func inputRows<V: SIMD>(_ d0: V, _ d1: V, _ d2: V, _ d3: V, _ d4: V, _ d5: V) -> (V, V, V, V, V, V)
where V.Scalar == Float {
    let s = d4 - 4 * d2, t = d3 - 4 * d1   // rows 1 and 2: s ± t
    let p = d4 - d2, q = 2 * (d3 - d1)     // rows 3 and 4: p ± q
    return (4 * d0 - 5 * d2 + d4, s + t, s - t, p + q, p - q, 4 * d1 - 5 * d3 + d5)
}

/// Aᵀ m for one column m0…m5 of a transformed tile.
@inline(__always)
private func outputRows<V: SIMD>(_ m0: V, _ m1: V, _ m2: V, _ m3: V, _ m4: V, _ m5: V) -> (V, V, V, V)
where V.Scalar == Float {
    let a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4
    return (m0 + a + c, b + 2 * d, a + 4 * c, b + 8 * d + m5)
}

@inline(__always)
private func load<V: SIMD>(_ p: UnsafePointer<Float>, _: V.Type) -> V where V.Scalar == Float {
    UnsafeRawPointer(p).loadUnaligned(as: V.self)
}

@inline(__always)
private func store<V: SIMD>(_ value: V, _ p: UnsafeMutablePointer<Float>) where V.Scalar == Float {
    UnsafeMutableRawPointer(p).storeBytes(of: value, as: V.self)
}

/// One tile's Bᵀ d B for V.scalarCount channels; output k goes to out + k · stride.
@inline(__always)
func inputTile<V: SIMD>(_ d: UnsafePointer<Float>, rowStride: Int, columnStride: Int,
                                _ out: UnsafeMutablePointer<Float>, _ stride: Int, _: V.Type, _ scratch: UnsafeMutableRawPointer) where V.Scalar == Float {
    do {
        let t = scratch.bindMemory(to: V.self, capacity: 36)
        for j in 0..<6 {
            let c = d + j * columnStride
            let r = inputRows(load(c, V.self), load(c + rowStride, V.self), load(c + 2 * rowStride, V.self),
                              load(c + 3 * rowStride, V.self), load(c + 4 * rowStride, V.self),
                              load(c + 5 * rowStride, V.self))
            (t[j], t[6 + j], t[12 + j], t[18 + j], t[24 + j], t[30 + j]) = r
        }
        for i in 0..<6 {
            let r = inputRows(t[i * 6], t[i * 6 + 1], t[i * 6 + 2], t[i * 6 + 3], t[i * 6 + 4], t[i * 6 + 5])
            let o = out + i * 6 * stride
            store(r.0, o); store(r.1, o + stride); store(r.2, o + 2 * stride)
            store(r.3, o + 3 * stride); store(r.4, o + 4 * stride); store(r.5, o + 5 * stride)
        }
    }
}

/// One tile's Aᵀ m A for V.scalarCount channels, m's entry k at m + k · stride; writes rows × columns outputs.
@inline(__always)
func outputTile<V: SIMD>(_ m: UnsafePointer<Float>, _ stride: Int, _ y: UnsafeMutablePointer<Float>,
                                 rowStride: Int, columnStride: Int, rows: Int, columns: Int, _: V.Type, _ scratch: UnsafeMutableRawPointer)
where V.Scalar == Float {
    do {
        let t = scratch.bindMemory(to: V.self, capacity: 24)
        for j in 0..<6 {
            let c = m + j * stride
            let r = outputRows(load(c, V.self), load(c + 6 * stride, V.self), load(c + 12 * stride, V.self),
                               load(c + 18 * stride, V.self), load(c + 24 * stride, V.self),
                               load(c + 30 * stride, V.self))
            (t[j], t[6 + j], t[12 + j], t[18 + j]) = r
        }
        for i in 0..<rows {
            let r = outputRows(t[i * 6], t[i * 6 + 1], t[i * 6 + 2], t[i * 6 + 3], t[i * 6 + 4], t[i * 6 + 5])
            let o = y + i * rowStride
            store(r.0, o)
            if columns > 1 { store(r.1, o + columnStride) }
            if columns > 2 { store(r.2, o + 2 * columnStride) }
            if columns > 3 { store(r.3, o + 3 * columnStride) }
        }
    }
}
