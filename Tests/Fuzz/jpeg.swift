// Fuzzes RGBImage.decodeJPEG (libjpeg-turbo behind the CJPEGDecode C target), then crops and resizes.
// Checks: malformed files throw DataError (libjpeg's fatal errors come back through setjmp, never end the process); a decoded image has width × height × 3 bytes; crop and resize keep their sizes.
import GraftData

private let path = scratchFolder + "/input.jpg"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    writeFile(path, buffer(data, size))
    let image: RGBImage
    do { image = try RGBImage.decodeJPEG(path: path) } catch is DataError {
        return 0
    } catch {
        check(false, "decodeJPEG threw a \(type(of: error)), not a DataError: \(error)")
        return 0
    }
    check(image.width > 0 && image.height > 0, "decoded \(image.width)×\(image.height)")
    check(image.pixels.count == image.width * image.height * 3, "\(image.pixels.count) bytes for \(image.width)×\(image.height)")
    let square = image.centerCropSquare()
    check(square.width == min(image.width, image.height) && square.height == square.width, "square \(square.width)×\(square.height)")
    let small = image.resizedBilinear(width: 7, height: 5)
    check(small.width == 7 && small.height == 5 && small.pixels.count == 105, "resized \(small.width)×\(small.height)")
    return 0
}
