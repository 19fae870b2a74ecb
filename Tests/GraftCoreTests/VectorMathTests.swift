import Testing
@testable import GraftCore

/// The block moves under the layout changes and strided reads: every element against its index arithmetic.
@Suite struct BlockMoves {
    @Test(arguments: [(8, 8), (16, 24), (5, 3), (13, 21), (8, 1), (1, 8), (17, 8)])
    func transposeMatchesIndexArithmetic(rows: Int, columns: Int) {
        let (srcStride, dstStride) = (columns + 3, rows + 5)
        let src = (0..<(rows * srcStride)).map { Float($0) }
        var dst = [Float](repeating: -1, count: columns * dstStride)
        src.withUnsafeBufferPointer { s in
            dst.withUnsafeMutableBufferPointer { d in
                transpose(s.baseAddress!, stride: srcStride, rows: rows, columns: columns, into: d.baseAddress!,
                          stride: dstStride)
            }
        }
        for j in 0..<columns {
            for i in 0..<dstStride {
                // Inside the block, the source element; the gaps between rows untouched.
                #expect(dst[j * dstStride + i] == (i < rows ? src[i * srcStride + j] : -1), "row \(j), column \(i)")
            }
        }
    }

    /// Strides 1 and 2 load whole vectors: every count and valid range against index arithmetic, with the bounds
    /// tight around the elements read (forcing single loads) or loose; the lanes outside `valid` read as zeros.
    @Test(arguments: [1, 2, 3, 5])
    func gatherStridedMasksAndStaysInBounds(stride s: Int) {
        let margin = 8 * s
        let source = (0..<(24 * s + 2 * margin)).map { Float($0 * 3 + 1) }
        for count in [0, 7, 8, 9, 17, 24] {
            let ranges = [0..<count, 0..<0] + (count >= 1 ? [1..<count] : []) + (count >= 5 ? [2..<(count - 3)] : [])
            for valid in ranges {
                for slack in [0, margin] {
                    var out = [Float](repeating: .nan, count: count)
                    source.withUnsafeBufferPointer { p in
                        out.withUnsafeMutableBufferPointer { o in
                            guard let dst = o.baseAddress else { return }
                            let src = p.baseAddress! + margin
                            // The elements a scalar copy would read, widened by `slack` on each side.
                            let lo = valid.isEmpty ? 0 : valid.lowerBound * s, hi = valid.isEmpty ? 0 : (valid.upperBound - 1) * s + 1
                            gatherStrided(dst, src, count: count, valid: valid, stride: s,
                                          bounds: (src + lo - slack)..<(src + hi + slack))
                        }
                    }
                    let expected = (0..<count).map { valid.contains($0) ? source[margin + $0 * s] : 0 }
                    #expect(out == expected, "count \(count), valid \(valid), slack \(slack)")
                }
            }
        }
    }
}
