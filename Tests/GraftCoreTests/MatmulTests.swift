import Testing
@testable import GraftCore

/// The plain triple loop the BLAS path is compared with.
func naiveMatmul(_ a: [Float], _ b: [Float], _ m: Int, _ k: Int, _ n: Int) -> [Float] {
    var c = [Float](repeating: 0, count: m * n)
    for i in 0..<m { for j in 0..<n { for p in 0..<k { c[i * n + j] += a[i * k + p] * b[p * n + j] } } }
    return c
}

@Suite struct Matmul {
    @Test func forwardMatchesLoop() {
        for (m, k, n) in [(1, 1, 1), (3, 5, 2), (17, 33, 9), (64, 70, 65)] {
            let a = sample([m, k], seed: 1), b = sample([k, n], seed: 2)
            expectClose(a.matmul(b).scalars, naiveMatmul(a.scalars, b.scalars, m, k, n))
        }
        let a = sample([2, 3, 4, 5], seed: 3), b = sample([3, 5, 6], seed: 4)
        let c = a.matmul(b)
        #expect(c.shape == [2, 3, 4, 6])
        for i in 0..<2 { for j in 0..<3 {
            let blockA = Array(a.scalars[(i * 3 + j) * 20..<(i * 3 + j + 1) * 20])
            let blockB = Array(b.scalars[j * 30..<(j + 1) * 30])
            expectClose(Array(c.scalars[(i * 3 + j) * 24..<(i * 3 + j + 1) * 24]), naiveMatmul(blockA, blockB, 4, 5, 6))
        } }
        let v = sample([5], seed: 5)
        #expect(a.matmul(v).shape == [2, 3, 4])
    }

    @Test func linearMatchesMatmulPlusBias() {
        let x = sample([2, 4, 6], seed: 1), w = sample([3, 6], seed: 2), b = sample([3], seed: 3)
        expectClose(Tensor.linear(x, weight: w, bias: b).scalars, (x.matmul(w.transposed()) + b).scalars)
    }

    @Test func gradients() {
        checkGradients([sample([3, 4], seed: 1), sample([4, 5], seed: 2)]) { $0[0].matmul($0[1]) }
        checkGradients([sample([2, 3, 4], seed: 1), sample([4, 5], seed: 2)]) { $0[0].matmul($0[1]) }
        checkGradients([sample([2, 1, 3, 4], seed: 1), sample([3, 4, 2], seed: 2)]) { $0[0].matmul($0[1]) }
        checkGradients([sample([4], seed: 1), sample([4, 3], seed: 2)]) { $0[0].matmul($0[1]) }
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            checkGradients([sample(ta ? [4, 3] : [3, 4], seed: 3), sample(tb ? [5, 4] : [4, 5], seed: 4)]) {
                Tensor.gemm($0[0], $0[1], transA: ta, transB: tb)
            }
        }
        checkGradients([sample([2, 3, 6], seed: 1), sample([4, 6], seed: 2), sample([4], seed: 3)]) {
            Tensor.linear($0[0], weight: $0[1], bias: $0[2])
        }
    }

    @Test func secondOrder() {
        checkSecondOrder([sample([3, 4], seed: 1), sample([4, 2], seed: 2)]) { $0[0].matmul($0[1]).tanh() }
        for (ta, tb) in [(true, false), (false, true), (true, true)] {
            checkSecondOrder([sample([4, 4], seed: 3), sample([4, 4], seed: 4)]) {
                Tensor.gemm($0[0], $0[1], transA: ta, transB: tb) * Tensor.gemm($0[0], $0[1])
            }
        }
        checkSecondOrder([sample([3, 5], seed: 1), sample([2, 5], seed: 2), sample([2], seed: 3)]) {
            Tensor.linear($0[0], weight: $0[1], bias: $0[2]).sigmoid()
        }
    }
}
