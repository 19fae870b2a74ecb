import Foundation
import GraftCore
import Testing
@testable import GraftData

/// What PyTorch's antialiased bilinear interpolate made of the same images (Fixtures/make_resize_fixtures.py).
private struct ResizeFixtures: Decodable {
    struct Case: Decodable { let shape: [Int]; let input: [Float]; let size: [Int]; let output: [Float] }
    let cases: [Case]
}

@Suite struct ResizeTests {
    @Test func matchesTorchAntialiasedBilinear() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/resize_fixtures.json")
        let fixtures = try JSONDecoder().decode(ResizeFixtures.self, from: Data(contentsOf: url))
        #expect(fixtures.cases.count == 7)
        for c in fixtures.cases {
            let ours = resizeImages(Tensor(c.input, shape: c.shape), height: c.size[0], width: c.size[1])
            #expect(ours.shape == [c.shape[0], c.shape[1]] + c.size)
            let worst = zip(ours.scalars, c.output).map { abs($0 - $1) }.max() ?? .infinity
            #expect(worst <= 2e-3, "\(c.shape) → \(c.size): off by \(worst) from torch (values 0–255)")
        }
    }

    @Test func sameSizeIsTheIdentity() {
        let x = Tensor((0..<24).map(Float.init), shape: [1, 2, 3, 4])
        #expect(resizeImages(x, height: 3, width: 4).scalars == x.scalars)
    }
}
