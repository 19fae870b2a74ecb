// Fuzzes SafeTensorsFile(path:) on whole files (8-byte length, JSON header, data), then reads every tensor.
// Checks: only thrown errors (no trap, no ASan report); an accepted file's entries match their shapes and dtypes,
// tile the data buffer exactly, have unique names, and load as tensors of their shape.
import GraftCore
import GraftIO

private let path = scratchFolder + "/input.safetensors"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    writeFile(path, buffer(data, size))
    let file: SafeTensorsFile
    do { file = try SafeTensorsFile(path: path, maxHeaderBytes: 1 << 20) } catch is SafeTensorsError {
        return 0
    } catch {
        check(false, "SafeTensorsFile threw a \(type(of: error)), not a SafeTensorsError: \(error)")
        return 0
    }
    check(file.fileSize == size, "fileSize \(file.fileSize) for \(size) bytes")
    let headerLength = Int(UInt64(littleEndian: UnsafeRawPointer(data!).loadUnaligned(as: UInt64.self)))
    let dataCount = size - 8 - headerLength
    var next = 0
    for info in file.infos {
        check(info.shape.allSatisfy { $0 >= 0 }, "\(info.name): negative dimension in \(info.shape)")
        check(info.byteRange.count == info.count * info.dtype.size,
              "\(info.name): \(info.byteRange) for \(info.count) × \(info.dtype.size) bytes")
        check(info.byteRange.lowerBound == next, "\(info.name): starts at \(info.byteRange.lowerBound), not \(next)")
        next = info.byteRange.upperBound
        check(file.contains(info.name), "\(info.name) not found by name")
    }
    check(next == dataCount, "tensors cover \(next) of \(dataCount) data bytes")
    check(Set(file.names).count == file.names.count, "duplicate names \(file.names)")
    do {
        for (name, tensor) in try file.tensors() {
            let info = try file.info(name)
            check(tensor.shape == info.shape, "\(name): tensor shape \(tensor.shape), header \(info.shape)")
        }
    } catch {
        check(false, "reading tensors of an accepted file threw \(error)")
    }
    return 0
}
