import Foundation
import GraftCore
import GraftIO
import Testing

/// A failed write must leave whatever was at the path untouched and no temporary file behind.
@Suite final class AtomicWriteTests {
    let directory: String
    let path: String
    let original: [UInt8]

    init() throws {
        directory = try makeScratchDirectory()
        path = "\(directory)/model.safetensors"
        try SafeTensors.write([("w", Tensor([1, 2, 3], shape: [3]))], to: path, metadata: ["version": "1"])
        original = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    private func expectUntouched(sourceLocation: SourceLocation = #_sourceLocation) throws {
        let now = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(now == original, "the existing file changed", sourceLocation: sourceLocation)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.contains(".tmp-") }
        #expect(leftovers.isEmpty || leftovers == ["model.safetensors.tmp-\(getpid())"], sourceLocation: sourceLocation)
    }

    @Test func successfulWriteReplacesFile() throws {
        try SafeTensors.write([("w", Tensor([4, 5], shape: [2]))], to: path)
        #expect(try SafeTensorsFile(path: path).tensor("w").scalars == [4, 5])
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["model.safetensors"])
    }

    @Test func duplicateNameLeavesFileUnchanged() throws {
        let tensors = [("a", Tensor([1], shape: [1])), ("layer.weight", Tensor([2], shape: [1])),
                       ("layer.weight", Tensor([3], shape: [1]))]
        let error = #expect(throws: SafeTensorsError.self) { try SafeTensors.write(tensors, to: path) }
        #expect(error?.kind == .invalidName)
        #expect(error?.description.contains(path) == true)
        #expect(error?.description.contains("'layer.weight'") == true)
        try expectUntouched()
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["model.safetensors"])
    }

    @Test func reservedNameIsRefused() throws {
        let error = #expect(throws: SafeTensorsError.self) {
            try SafeTensors.write([("__metadata__", Tensor([1], shape: [1]))], to: path)
        }
        #expect(error?.kind == .invalidName)
        try expectUntouched()
    }

    /// A directory squatting on the temporary name makes the I/O itself fail, after validation passed.
    @Test func failedTemporaryFileLeavesFileUnchanged() throws {
        try FileManager.default.createDirectory(atPath: "\(path).tmp-\(getpid())", withIntermediateDirectories: false)
        let error = #expect(throws: SafeTensorsError.self) {
            try SafeTensors.write([("w", Tensor([9, 9, 9, 9], shape: [4]))], to: path)
        }
        #expect(error?.kind == .io)
        #expect(error?.description.contains(path) == true)
        try expectUntouched()
    }

    @Test func missingDirectoryIsAnErrorNamingThePath() throws {
        let target = "\(directory)/no/such/dir/model.safetensors"
        let error = #expect(throws: SafeTensorsError.self) {
            try SafeTensors.write([("w", Tensor([1], shape: [1]))], to: target)
        }
        #expect(error?.kind == .io)
        #expect(error?.description.contains(target) == true)
        #expect(!FileManager.default.fileExists(atPath: target))
        try expectUntouched()
    }
}
