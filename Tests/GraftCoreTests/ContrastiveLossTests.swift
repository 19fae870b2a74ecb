import Foundation
import Testing
@testable import GraftCore
@testable import GraftNN

@Suite struct ContrastiveLossTests {
    /// PyTorch's values and gradients (Fixtures/make_ntxent_fixtures.py), including one row (no negatives: loss 0).
    @Test func ntXentMatchesPyTorch() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/ntxent.json")
        let fixture = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let cases = fixture["cases"] as! [[String: Any]]
        #expect(cases.count == 3)
        for c in cases {
            let z = Tensor((c["z"] as! [Double]).map(Float.init), shape: c["shape"] as! [Int], requiresGrad: true)
            let temperature = Float(c["temperature"] as! Double)
            let loss = Tensor.ntXent(z, temperature: temperature)
            expectClose([loss.item], [Float(c["loss"] as! Double)], rtol: 1e-5, atol: 1e-6)
            expectClose(grad(of: loss, wrt: [z])[0].scalars, (c["grad"] as! [Double]).map(Float.init), rtol: 1e-4, atol: 1e-6)
            #expect(Tensor.positivesRetrieved(z) == c["retrieved"] as! Int)
        }
    }

    @Test func ntXentGradientMatchesFiniteDifferences() {
        checkGradients([sample([8, 5], seed: 3)], eps: 1e-3, tolerance: 1e-2) { Tensor.ntXent($0[0], temperature: 0.5) }
        checkGradients([sample([6, 3], seed: 4, low: -2, high: 2)], eps: 1e-3, tolerance: 1e-2) {
            Tensor.ntXent($0[0], temperature: 0.2)
        }
    }

    /// The loss is a mean over anchors: reordering the rows' pairs leaves it unchanged (how ranks' rows are laid out
    /// in the gathered batch does not matter), and scaling a row does not change it (rows are normalised).
    @Test func ntXentIgnoresPairOrderAndRowLength() {
        let z = sample([6, 4], seed: 5)
        let swapped = z.indexSelect(axis: 0, Indices([4, 5, 0, 1, 2, 3], shape: [6]))
        let scaled = z * Tensor([1, 1, 3, 3, 0.5, 0.5], shape: [6, 1])
        let base = Tensor.ntXent(z, temperature: 0.5).item
        #expect(abs(Tensor.ntXent(swapped, temperature: 0.5).item - base) < 1e-6)
        #expect(abs(Tensor.ntXent(scaled, temperature: 0.5).item - base) < 1e-5)
    }

    /// Two rows, each view a copy of its partner and the rows orthogonal: every anchor sees its positive at
    /// similarity 1/τ and two negatives at 0, so the loss is log(1 + 2e^(−1/τ)) and every positive is retrieved.
    @Test func ntXentOfAlignedViewsHasItsClosedForm() {
        let z = Tensor([1, 0, 2, 0, 0, 1, 0, 5], shape: [4, 2])
        let tau: Float = 0.5
        #expect(abs(Tensor.ntXent(z, temperature: tau).item - Foundation.log(1 + 2 * Foundation.exp(-1 / tau))) < 1e-6)
        #expect(Tensor.positivesRetrieved(z) == 4)
    }
}
