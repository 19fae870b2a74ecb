import Foundation
import Testing
@testable import GraftData

/// Writes `text` as `data.csv` in `root` and returns its path.
private func csvFile(_ root: String, _ text: String) throws -> String {
    let path = root + "/data.csv"
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    return path
}

@Suite struct LabelledDataCSV {
    @Test func crlfEndingsALastLineWithoutNewlineAndBlanksAreRead() throws {
        try withScratchFolder { root in
            let expected = try LabelledData.csv(try csvFile(root, "1,2,0\n3,4,1\n"))
            for text in ["1,2,0\r\n3,4,1\r\n", "1,2,0\r\n3,4,1", "\u{FEFF}1, 2 ,0\n\n3,4,1\n", "1,2,0.0\n3,4,1e0"] {
                let data = try LabelledData.csv(try csvFile(root, text))
                #expect(data.features == expected.features && data.labels == expected.labels, "\(text.debugDescription)")
                #expect(data.featureCount == 2 && data.labels == [0, 1])
            }
            let scaled = try LabelledData.csv(try csvFile(root, "1,2,0\r\n"), scale: 0.5)
            #expect(scaled.features == [0.5, 1])
        }
    }

    @Test func nonFiniteAndOverflowingFeaturesNameLineAndColumn() throws {
        try withScratchFolder { root in
            for (value, why) in [("nan", "is not a finite number"), ("-inf", "is not a finite number"),
                                 ("Infinity", "is not a finite number"),
                                 ("1e39", "is beyond the range of a 32-bit float (±3.4e38)"),
                                 ("x", "is not a number"), ("", "is not a number")] {
                let path = try csvFile(root, "1,2,0\r\n3,\(value),1\r\n")
                expectRefusal(file: path, line: 2, ["column 2: '\(value)' \(why)"]) { _ = try LabelledData.csv(path) }
            }
            let path = try csvFile(root, "1,3e38,0\n")
            expectRefusal(file: path, line: 1, ["column 2: '3e38' times scale 10.0 is beyond the range"]) {
                _ = try LabelledData.csv(path, scale: 10)
            }
        }
    }

    @Test func labelsAreWholeClassIDsBelowTheLimitCheckedBeforeUse() throws {
        try withScratchFolder { root in
            let range = "is not a class id in 0..<\(LabelledData.maximumClassCount)"
            // 1000000 asked for terabytes once the model was sized by it; Int.max and 1e300 overflowed.
            for label in ["1000000", "100000", "-1", "9223372036854775807", "99999999999999999999999", "1e300"] {
                let path = try csvFile(root, "1,2,0\n3,4,\(label)\n")
                expectRefusal(file: path, line: 2, ["column 3 (the label): '\(label)' \(range)"]) {
                    _ = try LabelledData.csv(path)
                }
            }
            for label in ["2.5", "nan", "inf", "one", ""] {
                let path = try csvFile(root, "1,2,0\n3,4,\(label)\n")
                expectRefusal(file: path, line: 2, ["column 3 (the label): '\(label)' is not a whole number"]) {
                    _ = try LabelledData.csv(path)
                }
            }
            let highest = try LabelledData.csv(try csvFile(root, "1,2,0\n3,4,99999\n"))
            #expect(highest.classCount == LabelledData.maximumClassCount)
        }
    }

    @Test func raggedRowsAndRowsWithoutALabelAreNamed() throws {
        try withScratchFolder { root in
            let ragged = try csvFile(root, "1,2,0\r\n3,4,5,1\r\n")
            expectRefusal(file: ragged, line: 2, ["4 fields where earlier rows have 3"]) { _ = try LabelledData.csv(ragged) }
            let lonely = try csvFile(root, "7\n")
            expectRefusal(file: lonely, line: 1, ["expected features then a label, found 1 field '7'"]) {
                _ = try LabelledData.csv(lonely)
            }
            let empty = try csvFile(root, "\r\n\n")
            expectRefusal(file: empty, ["no rows"]) { _ = try LabelledData.csv(empty) }
        }
    }

    @Test func aHugeBadValueIsQuotedInPart() throws {
        try withScratchFolder { root in
            let huge = String(repeating: "a", count: 5_000_000)
            let path = try csvFile(root, "1,2,0\n\(huge),4,1\n")
            let message = expectRefusal(file: path, line: 2, ["column 1: '\(String(repeating: "a", count: 80))…' (5000000 characters) is not a number"]) {
                _ = try LabelledData.csv(path)
            }
            #expect(message.count - path.count < 200, "\(message.count) characters")
            // One field of a CRLF file read as a single line was the whole file, echoed.
            let oneField = try csvFile(root, huge + "\n")
            let lonely = expectRefusal(file: oneField, line: 1, ["found 1 field", "(5000000 characters)"]) {
                _ = try LabelledData.csv(oneField)
            }
            #expect(lonely.count - oneField.count < 200, "\(lonely.count) characters")
        }
    }

    @Test func specialFilesAreRefusedWithoutBeingOpened() throws {
        try withScratchFolder { root in
            let fifo = root + "/pipe.csv"
            try makeFIFO(fifo)
            expectRefusal(file: fifo, ["not a regular file (a FIFO)"]) { _ = try LabelledData.csv(fifo) }
            expectRefusal(file: "/dev/null", ["not a regular file (a character device)"]) { _ = try LabelledData.csv("/dev/null") }
            expectRefusal(file: root, ["not a regular file (a directory)"]) { _ = try LabelledData.csv(root) }
            expectRefusal(file: root + "/none.csv", ["cannot open: No such file or directory"]) {
                _ = try LabelledData.csv(root + "/none.csv")
            }
        }
    }
}
