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

    /// Strides 1 and 2 load whole vectors; an end just past the last element read forces the tail onto single loads.
    @Test(arguments: [1, 2, 3, 5])
    func gatherStridedStaysShortOfTheEnd(stride s: Int) {
        for count in [0, 7, 8, 9, 17, 24] {
            let source = (0..<((count - 1) * s + 1 + 16)).map { Float($0 * 3 + 1) }
            for slack in [0, 1, 16] {
                let end = count == 0 ? 0 : (count - 1) * s + 1 + slack
                var out = [Float](repeating: .nan, count: count)
                source.withUnsafeBufferPointer { p in
                    out.withUnsafeMutableBufferPointer { o in
                        guard let dst = o.baseAddress else { return }
                        gatherStrided(dst, p.baseAddress!, count: count, stride: s, end: p.baseAddress! + end)
                    }
                }
                #expect(out == (0..<count).map { source[$0 * s] }, "count \(count), end slack \(slack)")
            }
        }
    }
}
