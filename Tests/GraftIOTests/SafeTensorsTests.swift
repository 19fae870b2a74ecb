import Foundation
import GraftCore
@testable import GraftIO
import Testing

/// Values that a lossy or endian-confused writer would change: signed zero, infinities, a NaN with a payload,
/// subnormals and the extremes.
private let awkward: [Float] = [-0.0, .infinity, -.infinity, Float(nan: 0x1234, signaling: false),
                                .leastNonzeroMagnitude, .leastNormalMagnitude, .greatestFiniteMagnitude, 1 / 3]

private func sample(_ shape: [Int], seed: UInt64) -> Tensor {
    var rng = RandomGenerator(seed: seed)
    let storage = Storage(count: shape.product)
    for i in 0..<storage.count { storage.pointer[i] = i < awkward.count ? awkward[i] : rng.nextNormal() }
    return Tensor(shape: shape, storage: storage)
}

private func bits(_ t: Tensor) -> [UInt32] { t.scalars.map(\.bitPattern) }

@Suite final class SafeTensorsTests {
    let directory: String

    init() throws { directory = try makeScratchDirectory() }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    /// Several shapes, a scalar and empty tensors among them, with names that need JSON escaping.
    private let written: [(String, Tensor)] = [
        ("scalar", sample([], seed: 1)),
        ("encoder.layer.0.attention.self.query.weight", sample([3, 4], seed: 2)),
        ("empty", sample([0], seed: 3)),
        ("bias", sample([7], seed: 4)),
        ("empty_rows", sample([0, 3], seed: 5)),
        ("conv \"quoted\" \\ back\nslash é 🎉", sample([2, 3, 2, 2], seed: 6)),
        ("one", sample([1], seed: 7)),
    ]
    private let writtenMetadata = ["format": "pt", "step": "120", "note": "quote \" and \\ and\ttab"]

    @Test func roundTripIsBitIdentical() throws {
        let path = "\(directory)/model.safetensors"
        try SafeTensors.write(written, to: path, metadata: writtenMetadata)
        let file = try SafeTensorsFile(path: path)
        #expect(file.names == written.map(\.0))
        #expect(file.metadata == writtenMetadata)
        let loaded = try file.tensors()
        #expect(loaded.map(\.0) == written.map(\.0))
        for ((name, original), (_, back)) in zip(written, loaded) {
            #expect(back.shape == original.shape, "\(name)")
            #expect(bits(back) == bits(original), "\(name)")
            #expect(try bits(file.tensor(name)) == bits(original), "\(name)")
            #expect(try file.info(name).dtype == .f32)
        }
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int
        #expect(file.fileSize == size)
    }

    @Test func writerAlignsDataToEightBytes() throws {
        let path = "\(directory)/aligned.safetensors"
        try SafeTensors.write([("x", sample([5], seed: 9))], to: path)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let headerLength = bytes.prefix(8).reversed().reduce(0) { $0 << 8 | Int($1) }
        #expect(headerLength % 8 == 0)
        #expect(bytes[8] == UInt8(ascii: "{"))
        #expect(bytes.count == 8 + headerLength + 5 * 4)
        #expect(try SafeTensorsFile(path: path).metadata.isEmpty)
    }

    @Test func emptyFileOfTensors() throws {
        let path = "\(directory)/nothing.safetensors"
        try SafeTensors.write([], to: path)
        let file = try SafeTensorsFile(path: path)
        #expect(file.names.isEmpty)
        #expect(try file.tensors().isEmpty)
    }

    /// Readers must accept headers of any length, so data can start unaligned; also covers U16, U32 and U64.
    @Test func unpaddedHeaderAndUnalignedData() throws {
        var header = #"{"u64":{"dtype":"U64","shape":[1],"data_offsets":[0,8]},"#
            + #""u32":{"dtype":"U32","shape":[1],"data_offsets":[8,12]},"#
            + #""u16":{"dtype":"U16","shape":[1],"data_offsets":[12,14]},"#
            + #""f":{"dtype":"F32","shape":[2],"data_offsets":[14,22]}}"#
        if header.utf8.count % 2 == 0 { header += " " }
        let data = [UInt8](repeating: 0xFF, count: 14) + littleEndianBytes([1.5, -2])
        let path = try craft("\(directory)/unaligned.safetensors", header: header, data: data)
        let file = try SafeTensorsFile(path: path)
        #expect(file.names == ["u64", "u32", "u16", "f"])
        #expect(try file.tensor("u64").scalars == [Float(UInt64.max)])
        #expect(try file.tensor("u32").scalars == [Float(UInt32.max)])
        #expect(try file.tensor("u16").scalars == [65535])
        #expect(try file.tensor("f").scalars == [1.5, -2])
        #expect(try file.info("f") == SafeTensorsInfo(name: "f", dtype: .f32, shape: [2], byteRange: 14..<22))
    }

    @Test func halfConversionMatchesFloat16ForEveryBitPattern() {
        for h in UInt16.min...UInt16.max {
            let reference = Float(Float16(bitPattern: h))
            let converted = halfToFloat(h)
            if reference.isNaN {
                #expect(converted.isNaN && converted.sign == reference.sign, "\(h)")
            } else {
                #expect(converted.bitPattern == reference.bitPattern, "\(h)")
            }
        }
    }

    /// Reads a file the Python `safetensors` package wrote from PyTorch (Fixtures/make_safetensors_fixtures.py)
    /// and compares every dtype's values with PyTorch's own conversion to float32.
    @Test func readsFileWrittenByPyTorch() throws {
        struct Expected: Decodable {
            struct Entry: Decodable {
                let dtype: String
                let shape: [Int]
                let values: [Value]
            }
            /// A float, or "nan"/"inf"/"-inf", which JSON cannot spell as numbers.
            struct Value: Decodable {
                let float: Float
                init(from decoder: any Decoder) throws {
                    let c = try decoder.singleValueContainer()
                    if let d = try? c.decode(Double.self) {
                        float = Float(d)
                    } else {
                        let s = try c.decode(String.self)
                        guard let f = Float(s) else { throw DecodingError.dataCorruptedError(in: c, debugDescription: s) }
                        float = f
                    }
                }
            }
            let metadata: [String: String]
            let tensors: [String: Entry]
        }
        let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
        let expected = try JSONDecoder().decode(Expected.self,
                                                from: Data(contentsOf: fixtures.appendingPathComponent("expected.json")))
        let file = try SafeTensorsFile(path: fixtures.appendingPathComponent("torch_written.safetensors").path)
        let torchNames: [String: SafeTensorsDType] = [
            "float32": .f32, "float16": .f16, "bfloat16": .bf16, "float64": .f64, "int64": .i64, "int32": .i32,
            "int16": .i16, "int8": .i8, "uint8": .u8, "bool": .bool, "float8_e4m3fn": .f8e4m3, "float8_e5m2": .f8e5m2,
        ]
        #expect(file.metadata == expected.metadata)
        #expect(Set(file.names) == Set(expected.tensors.keys))
        let starts = file.infos.map(\.byteRange.lowerBound)
        #expect(starts == starts.sorted())
        for (name, entry) in expected.tensors {
            let info = try file.info(name)
            #expect(info.dtype == torchNames[entry.dtype], "\(name)")
            #expect(info.shape == entry.shape, "\(name)")
            let got = try file.tensor(name)
            #expect(got.shape == entry.shape, "\(name)")
            let want = entry.values.map(\.float)
            #expect(got.scalars.count == want.count, "\(name)")
            for (g, w) in zip(got.scalars, want) {
                #expect(g.bitPattern == w.bitPattern || (g.isNaN && w.isNaN), "\(name): \(g) != \(w)")
            }
        }
    }

    @Test(.enabled(if: pythonWithSafetensors != nil,
                   "needs .cache/torch-venv/bin/python with safetensors (launch/torch-env.sh, then pip install safetensors)"))
    func fileWrittenByGraftLoadsInPython() throws {
        let python = try #require(pythonWithSafetensors)
        let path = "\(directory)/for-python.safetensors"
        try SafeTensors.write(written, to: path, metadata: writtenMetadata)
        let script = """
            import json, sys
            from safetensors import safe_open
            out = {"tensors": {}}
            with safe_open(sys.argv[1], framework="np") as f:
                out["metadata"] = f.metadata()
                for name in f.keys():
                    t = f.get_tensor(name)
                    out["tensors"][name] = {"dtype": str(t.dtype), "shape": list(t.shape),
                                            "bits": t.view("uint32").flatten().tolist()}
            print(json.dumps(out))
            """
        let run = try runProcess(python, ["-c", script, path])
        #expect(run.status == 0)
        struct Loaded: Decodable {
            struct Entry: Decodable {
                let dtype: String
                let shape: [Int]
                let bits: [UInt32]
            }
            let metadata: [String: String]
            let tensors: [String: Entry]
        }
        let loaded = try JSONDecoder().decode(Loaded.self, from: run.output)
        #expect(loaded.metadata == writtenMetadata)
        #expect(Set(loaded.tensors.keys) == Set(written.map(\.0)))
        for (name, tensor) in written {
            let entry = try #require(loaded.tensors[name])
            #expect(entry.dtype == "float32", "\(name)")
            #expect(entry.shape == tensor.shape, "\(name)")
            #expect(entry.bits == bits(tensor), "\(name)")
        }
    }
}
