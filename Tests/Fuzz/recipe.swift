// Fuzzes Recipe.load(path:): YAML reading (Yams, and its tree turned into YAMLNode), `${VAR:-default}` expansion and
// every field check of a recipe.
// Checks: only thrown errors (no trap, no exit); parsing is deterministic (the same text gives the same tree).
import Foundation
import GraftIO
import GraftRecipe

private let path = scratchFolder + "/recipe.yaml"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = buffer(data, size)
    writeFile(path, bytes)
    _ = try? Recipe.load(path: path)
    _ = try? Recipe.load(path: path, overrides: ["training.epochs=2", "model.hidden=[4, 4]"])
    // YAML reading proper, on the text as a String (invalid UTF-8 repaired), twice.
    let text = String(decoding: bytes, as: UTF8.self)
    let first = Result { () throws(YAMLError) in try YAML.parse(text, file: "fuzz.yaml") }
    let second = Result { () throws(YAMLError) in try YAML.parse(text, file: "fuzz.yaml") }
    switch (first, second) {
    case let (.success(a), .success(b)): check(a == b, "YAML.parse is not deterministic")
    case let (.failure(a), .failure(b)): check(a == b, "YAML.parse fails differently: \(a) / \(b)")
    default: check(false, "YAML.parse succeeds once and fails once")
    }
    return 0
}
