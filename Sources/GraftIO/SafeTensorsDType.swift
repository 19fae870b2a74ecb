/// An element type of a safetensors file, named as in the header.
public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case bool = "BOOL"
    case u8 = "U8"
    case i8 = "I8"
    case f8e5m2 = "F8_E5M2"
    case f8e4m3 = "F8_E4M3"
    case i16 = "I16"
    case u16 = "U16"
    case f16 = "F16"
    case bf16 = "BF16"
    case i32 = "I32"
    case u32 = "U32"
    case f32 = "F32"
    case f64 = "F64"
    case i64 = "I64"
    case u64 = "U64"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .bool, .u8, .i8, .f8e5m2, .f8e4m3: 1
        case .i16, .u16, .f16, .bf16: 2
        case .i32, .u32, .f32: 4
        case .f64, .i64, .u64: 8
        }
    }

    /// Converts `count` little-endian elements at `source` (any alignment) to Float32, rounding to nearest.
    /// Integers beyond 2^24 and F64 values lose precision, as they do in PyTorch's `.float()`.
    func convert(_ source: UnsafeRawPointer, count: Int, into out: UnsafeMutablePointer<Float>) {
        switch self {
        case .bool: map(source, count, out) { (b: UInt8) in b != 0 ? 1 : 0 }
        case .u8: map(source, count, out) { (v: UInt8) in Float(v) }
        case .i8: map(source, count, out) { (v: Int8) in Float(v) }
        case .f8e5m2: map(source, count, out) { (b: UInt8) in halfToFloat(UInt16(b) << 8) }
        case .f8e4m3: map(source, count, out) { (b: UInt8) in e4m3ToFloat(b) }
        case .i16: map(source, count, out) { (v: Int16) in Float(v) }
        case .u16: map(source, count, out) { (v: UInt16) in Float(v) }
        case .f16: map(source, count, out) { (h: UInt16) in halfToFloat(h) }
        case .bf16: map(source, count, out) { (b: UInt16) in Float(bitPattern: UInt32(b) << 16) }
        case .i32: map(source, count, out) { (v: Int32) in Float(v) }
        case .u32: map(source, count, out) { (v: UInt32) in Float(v) }
        case .f32: map(source, count, out) { (b: UInt32) in Float(bitPattern: b) }
        case .f64: map(source, count, out) { (b: UInt64) in Float(Double(bitPattern: b)) }
        case .i64: map(source, count, out) { (v: Int64) in Float(v) }
        case .u64: map(source, count, out) { (v: UInt64) in Float(v) }
        }
    }
}

/// Tensor data sits at whatever offset the header leaves it, so elements are loaded unaligned.
@inline(__always)
private func map<T: FixedWidthInteger>(_ source: UnsafeRawPointer, _ count: Int, _ out: UnsafeMutablePointer<Float>,
                                       _ f: (T) -> Float) {
    let stride = MemoryLayout<T>.size
    for i in 0..<count {
        out[i] = f(T(littleEndian: source.loadUnaligned(fromByteOffset: i * stride, as: T.self)))
    }
}

/// IEEE binary16 to binary32; every half value, subnormals and NaN payloads included, is exact in Float32.
@inline(__always)
func halfToFloat(_ h: UInt16) -> Float {
    let sign: UInt32 = UInt32(h & 0x8000) << 16
    let exponent = UInt32(h >> 10) & 0x1F
    let mantissa = UInt32(h & 0x3FF)
    if exponent == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13) }
    if exponent == 0 {
        let magnitude = Float(mantissa) * 0x1p-24
        return sign == 0 ? magnitude : -magnitude
    }
    return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
}

/// OCP FP8 E4M3 ("fn": finite only): bias 7, no infinities, S.1111.111 is NaN.
@inline(__always)
func e4m3ToFloat(_ b: UInt8) -> Float {
    let exponent = Int(b >> 3) & 0xF
    let mantissa = Float(b & 7)
    let magnitude: Float
    if exponent == 0xF && b & 7 == 7 {
        magnitude = .nan
    } else if exponent == 0 {
        magnitude = mantissa * 0x1p-9
    } else {
        magnitude = (1 + mantissa / 8) * Float(sign: .plus, exponent: exponent - 7, significand: 1)
    }
    return b & 0x80 == 0 ? magnitude : -magnitude
}
