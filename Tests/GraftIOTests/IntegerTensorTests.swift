import Foundation
import Testing
@testable import GraftIO

@Suite struct IntegerTensorTests {
    private let file: SafeTensorsFile = {
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        return try! SafeTensorsFile(path: fixtures.appendingPathComponent("torch_written.safetensors").path)
    }()

    /// The values make_safetensors_fixtures.py gave PyTorch, exact where Float32 would round (2^40 + 1, 16777217).
    @Test func integerTensorsKeepTheirExactValues() throws {
        let i64 = try file.integers("i64")
        #expect(i64.shape == [2, 3] && i64.values == [0, -1, (1 << 40) + 1, -(1 << 62), 16_777_217, 9])
        #expect(Double(try file.tensor("i64").scalars[4]) == 16_777_216, "Float32 rounds it, hence integers(_:)")
        #expect(try file.integers("u8").values == [0, 1, 127, 128, 200, 255])
        #expect(try file.integers("bool").values.allSatisfy { $0 == 0 || $0 == 1 })
    }

    @Test func aFloatTensorIsNotReadAsIntegers() {
        let error = #expect(throws: SafeTensorsError.self) { _ = try file.integers("f32") }
        #expect(error?.kind == .wrongType && error?.description.contains("f32") == true && error?.description.contains("F32") == true)
        #expect(throws: SafeTensorsError.self) { _ = try file.integers("missing") }
    }
}
