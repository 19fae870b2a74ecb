import Testing
@testable import GraftCore

/// The fp32 GEMM libraries: each against a double-precision product (every transpose pair, sizes off any kernel's
/// tiles, leading dimensions wider than the matrices, alpha and beta), on one thread and on several, and
/// `GRAFT_GEMM`'s parsing.
@Suite struct GEMMLibraries {
    static let available = GEMMLibrary.allCases.filter { $0 != .oneDNN || OneDNN.loaded != nil }

    /// c = alpha · op(a) · op(b) + beta · c with a, b and c inside wider rows (lda, ldb, ldc + 3), in Double.
    @Test(arguments: available)
    func productsMatchDoublePrecision(_ library: GEMMLibrary) {
        var rng = RandomGenerator(seed: 21)
        for (transA, transB) in [(false, false), (false, true), (true, false), (true, true)] {
            // k = 0 (a rank without rows): c = beta · c.
            for (m, n, k) in [(1, 1, 1), (17, 33, 31), (130, 70, 257), (3, 300, 5), (4, 6, 0)] {
                let (ra, ca) = transA ? (k, m) : (m, k), (rb, cb) = transB ? (n, k) : (k, n)
                let (lda, ldb, ldc) = (ca + 3, cb + 3, n + 3)
                let a = (0..<ra * lda).map { _ in Float.random(in: -1...1, using: &rng) }
                let b = (0..<rb * ldb).map { _ in Float.random(in: -1...1, using: &rng) }
                let c0 = (0..<m * ldc).map { _ in Float.random(in: -1...1, using: &rng) }
                var c = c0
                library.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: 0.75, a, lda: lda, b, ldb: ldb,
                              beta: 0.5, &c, ldc: ldc)
                for i in 0..<m {
                    for j in 0..<ldc {
                        let got = Double(c[i * ldc + j])
                        guard j < n else {
                            // Past column n the row's padding is left alone.
                            #expect(c[i * ldc + j] == c0[i * ldc + j], "\(library) wrote padding at [\(i), \(j)]")
                            continue
                        }
                        var sum = 0.0, magnitude = 0.0
                        for p in 0..<k {
                            let x = Double(a[transA ? p * lda + i : i * lda + p])
                            let w = Double(b[transB ? j * ldb + p : p * ldb + j])
                            sum += x * w
                            magnitude += abs(x * w)
                        }
                        let want = 0.75 * sum + 0.5 * Double(c0[i * ldc + j])
                        #expect(abs(got - want) <= 1e-5 * (magnitude + 1), """
                            \(library) \(transA ? "T" : "N")\(transB ? "T" : "N") (\(m), \(n), \(k)) [\(i), \(j)]: \
                            \(got) vs \(want)
                            """)
                    }
                }
            }
        }
    }

    /// oneDNN on three threads of its own, and from several threads at once (Graft's lanes, each holding it to
    /// one), gives what one thread gives. (OpenBLAS's own threads are set process-wide, which tests running in
    /// parallel must not do.)
    @Test(.enabled(if: OneDNN.loaded != nil, "oneDNN is not installed"))
    func oneDNNThreadsGiveTheSameProduct() throws {
        let dnnl = try #require(OneDNN.loaded)
        var rng = RandomGenerator(seed: 22)
        let (m, n, k) = (256, 192, 320)
        let a = (0..<m * k).map { _ in Float.random(in: -1...1, using: &rng) }
        let b = (0..<k * n).map { _ in Float.random(in: -1...1, using: &rng) }
        let product = { (threads: Int32) -> [Float] in
            var c = [Float](repeating: 0, count: m * n)
            dnnl.sgemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a, lda: k, b, ldb: n, beta: 0, &c,
                       ldc: n, threads: threads)
            return c
        }
        let one = product(1)
        expectClose(product(3), one, rtol: 1e-5, atol: 1e-5)
        let lanes = 4, results = UnsafeMutablePointer<Float>.allocate(capacity: lanes * m * n)
        defer { results.deallocate() }
        runLanes(lanes) { lane in
            dnnl.sgemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a, lda: k, b, ldb: n, beta: 0,
                       results + lane * m * n, ldc: n, threads: 1)
        }
        for lane in 0..<lanes {
            expectClose(Array(UnsafeBufferPointer(start: results + lane * m * n, count: m * n)), one, rtol: 1e-5,
                        atol: 1e-5)
        }
    }

    @Test func settingNamesALibrary() throws {
        #expect(try GEMMLibrary.choose(setting: "openblas") == .openBLAS)
        #expect(try GEMMLibrary.choose(setting: "OpenBLAS") == .openBLAS)
        // Unset or empty: oneDNN when it loads, else OpenBLAS.
        let fastest: GEMMLibrary = OneDNN.loaded == nil ? .openBLAS : .oneDNN
        #expect(try GEMMLibrary.choose(setting: nil) == fastest)
        #expect(try GEMMLibrary.choose(setting: "") == fastest)
        if OneDNN.loaded != nil { #expect(try GEMMLibrary.choose(setting: "onednn") == .oneDNN) }
        let error = #expect(throws: GEMMLibraryError.self) { try GEMMLibrary.choose(setting: "mkl") }
        #expect(error?.description == "GRAFT_GEMM=mkl: expected one of openblas, onednn")
    }
}

/// `GEMMRecording`: the products a forward and backward pass make, with their shapes. Tests on other threads may
/// multiply meanwhile and be recorded too, so the shapes here are odd ones, looked for among the rest.
@Suite struct GEMMRecordings {
    @Test func aProductAndItsGradientsAreRecorded() {
        let a = sample([13, 17], seed: 1), b = sample([17, 11], seed: 2)
        a.requiresGrad = true
        b.requiresGrad = true
        let products = GEMMRecording.products {
            _ = grad(of: a.matmul(b), wrt: [a, b], gradOutput: sample([13, 11], seed: 3))
        }
        // y = a·b, then ∂a = g·bᵀ [13, 17] and ∂b = aᵀ·g [17, 11].
        let shapes = products.map { [$0.m, $0.n, $0.k] }
        let forward = shapes.firstIndex(of: [13, 11, 17])
        #expect(forward != nil, "\(shapes)")
        #expect(forward.map { !products[$0].transA && !products[$0].transB && !products[$0].accumulates } == true)
        #expect(shapes.contains([13, 17, 11]) && shapes.contains([17, 11, 13]), "\(shapes)")
        #expect(shapes.firstIndex(of: [13, 17, 11]).map { $0 > forward ?? .max } == true)
        // A new recording starts empty: the next one holds its own product and not the ones above.
        let next = GEMMRecording.products { _ = sample([19, 3], seed: 4).matmul(sample([3, 23], seed: 5)) }
        #expect(next.contains { [$0.m, $0.n, $0.k] == [19, 23, 3] })
        #expect(!next.contains { [$0.m, $0.n, $0.k] == [13, 11, 17] })
    }
}
