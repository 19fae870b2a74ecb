import Foundation
import GraftCore
import GraftIO
import Testing

/// A fresh directory under the system temp dir; tests run in parallel, so each gets its own.
func makeScratchDirectory() throws -> String {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("graft-io-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url.path
}

/// Writes a safetensors file byte by byte: the length field (the header's true length unless overridden), the header
/// bytes, then `data`.
@discardableResult
func craft(_ path: String, header: [UInt8], data: [UInt8] = [], lengthField: UInt64? = nil) throws -> String {
    let length = lengthField ?? UInt64(header.count)
    let bytes = withUnsafeBytes(of: length.littleEndian) { Array($0) } + header + data
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
}

@discardableResult
func craft(_ path: String, header: String, data: [UInt8] = [], lengthField: UInt64? = nil) throws -> String {
    try craft(path, header: Array(header.utf8), data: data, lengthField: lengthField)
}

/// Bytes of little-endian Float32 values, as a tensor's data in a crafted file.
func littleEndianBytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
}

/// Asserts that opening `path` fails with `kind`, and that the message names the file and, if given, the tensor.
func expectOpenFails(_ path: String, _ kind: SafeTensorsError.Kind, tensor: String? = nil,
                     maxHeaderBytes: Int = 100_000_000, sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try SafeTensorsFile(path: path, maxHeaderBytes: maxHeaderBytes)
        Issue.record("\(path) opened without an error", sourceLocation: sourceLocation)
    } catch let error as SafeTensorsError {
        #expect(error.kind == kind, "\(error)", sourceLocation: sourceLocation)
        #expect(error.description.contains(path), "\(error)", sourceLocation: sourceLocation)
        if let tensor {
            #expect(error.tensor == tensor, "\(error)", sourceLocation: sourceLocation)
            #expect(error.description.contains("'\(tensor)'"), "\(error)", sourceLocation: sourceLocation)
        }
    } catch {
        Issue.record("unexpected error type: \(error)", sourceLocation: sourceLocation)
    }
}

/// Python with the `safetensors` package, from the venv launch/torch-env.sh makes; nil when there is none.
let pythonWithSafetensors: String? = {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let python = root.appendingPathComponent(".cache/torch-venv/bin/python").path
    guard FileManager.default.isExecutableFile(atPath: python),
          let result = try? runProcess(python, ["-c", "import safetensors.numpy"]), result.status == 0 else { return nil }
    return python
}()

/// Runs `executable` to completion and returns its exit status and standard output.
func runProcess(_ executable: String, _ arguments: [String]) throws -> (status: Int32, output: Data) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let stdout = Pipe()
    process.standardOutput = stdout
    try process.run()
    let output = stdout.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, output)
}
