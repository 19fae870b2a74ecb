// Fuzzes LabelledData.csv (headerless numeric CSV, label last) and a stratified split of what it read.
// Checks: only DataError is thrown; an accepted file has rows × features values, every feature finite, every
// label in 0..<maximumClassCount; the split partitions the rows.
import GraftData

private let path = scratchFolder + "/input.csv"
/// The scale depends on the input length so the scaled-overflow path is reachable too.
private let scales: [Float] = [1, 1.0 / 255, 1e30]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    writeFile(path, buffer(data, size))
    let scale = scales[size % scales.count]
    let table: LabelledData
    do { table = try LabelledData.csv(path, scale: scale) } catch is DataError {
        return 0
    } catch {
        check(false, "csv threw a \(type(of: error)), not a DataError: \(error)")
        return 0
    }
    check(table.count > 0 && table.featureCount >= 1, "\(table.count) rows of \(table.featureCount) features")
    check(table.features.count == table.count * table.featureCount, "feature count mismatch")
    check(table.features.allSatisfy(\.isFinite), "a non-finite feature was accepted")
    check(table.labels.allSatisfy { (0..<LabelledData.maximumClassCount).contains($0) }, "label out of range")
    let (train, test) = table.stratifiedSplit(heldOut: 0.25, seed: UInt64(size))
    check(train.count + test.count == table.count, "split lost rows: \(train.count) + \(test.count) ≠ \(table.count)")
    check(train.featureCount == table.featureCount && test.featureCount == table.featureCount, "split changed width")
    return 0
}
