import Foundation
import GraftIO
import Testing

/// Each malformed file is built by hand; every error must name the file and, where one is at fault, the tensor.
@Suite final class SafeTensorsValidationTests {
    let directory: String

    init() throws { directory = try makeScratchDirectory() }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    private func path(_ name: String = #function) -> String {
        "\(directory)/\(name.prefix { $0 != "(" }).safetensors"
    }

    private let fourFloats = littleEndianBytes([1, 2, 3, 4])

    @Test func missingFile() {
        expectOpenFails(path(), .io)
    }

    @Test func shorterThanLengthField() throws {
        let p = path()
        try Data([1, 0, 0, 0, 0]).write(to: URL(fileURLWithPath: p))
        expectOpenFails(p, .truncated)
    }

    @Test func emptyFile() throws {
        let p = path()
        try Data().write(to: URL(fileURLWithPath: p))
        expectOpenFails(p, .truncated)
    }

    @Test func headerLengthBeyondFile() throws {
        expectOpenFails(try craft(path(), header: "{}", data: fourFloats, lengthField: 1000), .headerBeyondFile)
    }

    @Test func headerLengthOverConfiguredCap() throws {
        let p = try craft(path(), header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: fourFloats)
        expectOpenFails(p, .headerTooLarge, maxHeaderBytes: 16)
        #expect(try SafeTensorsFile(path: p).names == ["w"])
    }

    @Test func hostileHeaderLength() throws {
        expectOpenFails(try craft(path(), header: "{}", lengthField: .max), .headerTooLarge)
    }

    @Test func headerNotUTF8() throws {
        expectOpenFails(try craft(path(), header: [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D]), .invalidHeader)
    }

    @Test func headerNotJSON() throws {
        expectOpenFails(try craft(path(), header: #"{"w": {"dtype": "F32", "#), .invalidHeader)
    }

    @Test func headerNotAnObject() throws {
        expectOpenFails(try craft(path(), header: "[1, 2, 3]"), .invalidHeader)
    }

    @Test func emptyHeader() throws {
        expectOpenFails(try craft(path(), header: ""), .invalidHeader)
    }

    @Test func metadataNotStrings() throws {
        expectOpenFails(try craft(path(), header: #"{"__metadata__":{"epoch":3}}"#), .invalidHeader)
    }

    /// The reference keeps the last of two entries with one name and Foundation's decoders the first; refusing
    /// the file is the only answer that cannot load different weights than Python does.
    @Test func repeatedTensorName() throws {
        let header = #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"#
            + #""w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
        let p = try craft(path(), header: header, data: littleEndianBytes([1, 2]))
        expectOpenFails(p, .invalidHeader)
        do {
            _ = try SafeTensorsFile(path: p)
        } catch {
            #expect("\(error)".contains(#"key "w" appears twice"#), "\(error)")
        }
    }

    @Test(arguments: [String(repeating: "[", count: 200) + String(repeating: "]", count: 200),
                      #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}} trailing"#,
                      #"{"w":{"dtype":"F32","shape":[04],"data_offsets":[0,16]}}"#,
                      #"{"w":{"dtype":"F32\x","shape":[4],"data_offsets":[0,16]}}"#,
                      "{\"w\":{\"dtype\":\"F3\n2\",\"shape\":[4],\"data_offsets\":[0,16]}}",
                      #"{"\ud800":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
                      #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16],}}"#])
    func malformedJSON(_ header: String) throws {
        let p = try craft("\(directory)/json-\(UUID().uuidString).safetensors", header: header, data: fourFloats)
        expectOpenFails(p, .invalidHeader)
    }

    /// Escapes, including a surrogate pair, decode to the names and dtypes they spell.
    @Test func escapedStrings() throws {
        let header = #"{"emb\u00e9\ud83c\udf89\"\/":{"dtype":"F\u0033\u0032","shape":[4],"data_offsets":[0,16]}}"#
        let file = try SafeTensorsFile(path: try craft(path(), header: header, data: fourFloats))
        #expect(file.names == ["embé🎉\"/"])
        #expect(try file.tensor("embé🎉\"/").scalars == [1, 2, 3, 4])
    }

    @Test(arguments: ["dtype", "shape", "data_offsets"])
    func entryMissingField(_ field: String) throws {
        var fields = [#""dtype":"F32""#, #""shape":[4]"#, #""data_offsets":[0,16]"#]
        fields.removeAll { $0.hasPrefix("\"\(field)\"") }
        let p = try craft("\(directory)/missing-\(field).safetensors",
                          header: #"{"w.weight":{\#(fields.joined(separator: ","))}}"#, data: fourFloats)
        expectOpenFails(p, .invalidEntry, tensor: "w.weight")
    }

    @Test(arguments: [
        #"{"dtype":32,"shape":[4],"data_offsets":[0,16]}"#,
        #"{"dtype":"F32","shape":"4","data_offsets":[0,16]}"#,
        #"{"dtype":"F32","shape":[4.5],"data_offsets":[0,16]}"#,
        #"{"dtype":"F32","shape":[4],"data_offsets":[0]}"#,
        #"{"dtype":"F32","shape":[4],"data_offsets":[0,16,32]}"#,
        #"{"dtype":"F32","shape":[4],"data_offsets":["0","16"]}"#,
        #"{"dtype":"F32","shape":[4],"data_offsets":[0,1e40]}"#,
        #"{"dtype":null,"shape":[4],"data_offsets":[0,16]}"#,
        #""F32""#,
    ])
    func entryWithWrongTypes(_ entry: String) throws {
        let p = try craft("\(directory)/types-\(UUID().uuidString).safetensors", header: #"{"w":\#(entry)}"#,
                          data: fourFloats)
        expectOpenFails(p, .invalidEntry, tensor: "w")
    }

    @Test func unknownDType() throws {
        let p = try craft(path(), header: #"{"w":{"dtype":"F7","shape":[4],"data_offsets":[0,16]}}"#, data: fourFloats)
        expectOpenFails(p, .unknownDType, tensor: "w")
    }

    @Test func negativeDimension() throws {
        let p = try craft(path(), header: #"{"w":{"dtype":"F32","shape":[-2,-2],"data_offsets":[0,16]}}"#,
                          data: fourFloats)
        expectOpenFails(p, .invalidShape, tensor: "w")
    }

    @Test func elementCountOverflow() throws {
        let huge = 1 << 62
        let p = try craft(path(), header: #"{"w":{"dtype":"F32","shape":[\#(huge),\#(huge)],"data_offsets":[0,16]}}"#,
                          data: fourFloats)
        expectOpenFails(p, .invalidShape, tensor: "w")
    }

    @Test func byteOverflowFromDTypeSize() throws {
        let p = try craft(path(), header: #"{"w":{"dtype":"F64","shape":[\#(1 << 61)],"data_offsets":[0,16]}}"#,
                          data: fourFloats)
        expectOpenFails(p, .invalidShape, tensor: "w")
    }

    @Test func byteLengthDisagreesWithShape() throws {
        let p = try craft(path(), header: #"{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}"#, data: fourFloats)
        expectOpenFails(p, .sizeMismatch, tensor: "w")
    }

    @Test func offsetsPastDataBuffer() throws {
        let p = try craft(path(), header: #"{"w":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}}"#, data: fourFloats)
        expectOpenFails(p, .offsetsOutOfRange, tensor: "w")
    }

    @Test func reversedOffsets() throws {
        let p = try craft(path(), header: #"{"w":{"dtype":"F32","shape":[0],"data_offsets":[16,0]}}"#, data: fourFloats)
        expectOpenFails(p, .offsetsOutOfRange, tensor: "w")
    }

    @Test func negativeOffset() throws {
        let p = try craft(path(), header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}"#, data: fourFloats)
        expectOpenFails(p, .offsetsOutOfRange, tensor: "w")
    }

    @Test func overlappingTensors() throws {
        let header = #"{"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]},"#
            + #""a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
            + #""c":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}"#
        let p = try craft(path(), header: header, data: fourFloats)
        expectOpenFails(p, .overlap, tensor: "b")
        do {
            _ = try SafeTensorsFile(path: p)
        } catch {
            #expect("\(error)".contains("'a'"), "the message should name the other tensor: \(error)")
        }
    }

    @Test func holeBetweenTensors() throws {
        let header = #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"#
            + #""b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#
        expectOpenFails(try craft(path(), header: header, data: fourFloats), .gap, tensor: "b")
    }

    @Test func bytesAfterLastTensor() throws {
        let p = try craft(path(), header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}"#, data: fourFloats)
        expectOpenFails(p, .gap)
    }

    @Test func dataWithoutTensors() throws {
        expectOpenFails(try craft(path(), header: "{}", data: [0]), .gap)
    }

    @Test func unknownTensorName() throws {
        let p = try craft(path(), header: #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: fourFloats)
        let file = try SafeTensorsFile(path: p)
        #expect(!file.contains("layer1.weight"))
        for lookup in [{ _ = try file.tensor("layer1.weight") }, { _ = try file.info("layer1.weight") }] {
            let error = #expect(throws: SafeTensorsError.self) { try lookup() }
            #expect(error?.kind == .tensorNotFound)
            #expect(error?.description.contains(p) == true)
            #expect(error?.description.contains("'layer1.weight'") == true)
        }
    }
}
