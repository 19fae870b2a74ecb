import Testing
@testable import GraftCore

@Suite struct BLASKernelChoice {
    static let avx512: Set<String> = ["avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"]

    @Test func dropsAnInheritedAVX2CoreTypeOnAnAVX512CPU() {
        for inherited in ["Haswell", "ZEN", "sandybridge"] {
            #expect(BLASKernels.coreTypeChange(environment: ["OPENBLAS_CORETYPE": inherited], cpuFlags: Self.avx512) == .unset)
        }
    }

    @Test func keepsOtherChoices() {
        // An AVX2-only CPU keeps Haswell; an AVX-512 kernel set is kept; without the variable OpenBLAS chooses.
        #expect(BLASKernels.coreTypeChange(environment: ["OPENBLAS_CORETYPE": "Haswell"], cpuFlags: ["avx2", "fma"]) == nil)
        #expect(BLASKernels.coreTypeChange(environment: ["OPENBLAS_CORETYPE": "Haswell"],
                                           cpuFlags: Self.avx512.subtracting(["avx512vl"])) == nil)
        #expect(BLASKernels.coreTypeChange(environment: ["OPENBLAS_CORETYPE": "SkylakeX"], cpuFlags: Self.avx512) == nil)
        #expect(BLASKernels.coreTypeChange(environment: [:], cpuFlags: Self.avx512) == nil)
    }

    @Test func graftChoiceWins() {
        #expect(BLASKernels.coreTypeChange(environment: ["GRAFT_BLAS_CORETYPE": "Haswell"], cpuFlags: Self.avx512) == .set("Haswell"))
        #expect(BLASKernels.coreTypeChange(environment: ["GRAFT_BLAS_CORETYPE": "Haswell", "OPENBLAS_CORETYPE": "Haswell"],
                                           cpuFlags: Self.avx512) == nil)
    }

    /// Whichever kernels are loaded (launch/test.sh runs the debug and release suites on the inherited and on
    /// OpenBLAS's own choice), products whose sizes are no multiple of any kernel's blocking, in every transpose,
    /// match the plain loop.
    @Test func loadedKernelsMatchTheLoop() {
        for (m, k, n) in [(67, 129, 45), (200, 33, 257)] {
            let a = sample([m, k], seed: 7), b = sample([k, n], seed: 8)
            let expected = naiveMatmul(a.scalars, b.scalars, m, k, n)
            expectClose(a.matmul(b).scalars, expected, atol: 1e-4)
            let at = a.transposed(), bt = b.transposed()
            expectClose(Tensor.gemm(at, bt, transA: true, transB: true).scalars, expected, atol: 1e-4)
            expectClose(Tensor.gemm(at, b, transA: true).scalars, expected, atol: 1e-4)
            expectClose(Tensor.gemm(a, bt, transB: true).scalars, expected, atol: 1e-4)
        }
    }
}
