import ArgumentParser
import Foundation
import GraftCore
import GraftData
import GraftRecipe

/// Classifies new inputs with a trained run.
struct Predict: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Classify new inputs with a trained run's best weights.",
        discussion: """
            Reads inputs as the run's recipe reads its data, with its tokenizer, scaling and image shape: for a text \
            recipe, each file is one document, a folder gives its files, and without INPUT (or with -) each line of \
            standard input is one document; for a CSV recipe, each line of each file (or of standard input) is a row \
            of feature values, a trailing label allowed and ignored; for an image recipe (image folder, IDX), each \
            PNG or JPEG file, a folder giving its image files, through the recipe's eval transforms. Prints the \
            label and the top-k probabilities; for a multi-task run, each task's.
            """)

    @Argument(help: ArgumentHelp("A run directory written by graft train.", valueName: "RUN_DIR")) var directory: String
    @Argument(help: "Files or folders to classify; none or - reads standard input.") var inputs: [String] = []
    @Option(help: "How many classes to list per input.") var top = 3
    @Option(help: "table or json (one JSON object per line).") var format = "table"

    func validate() throws {
        if top < 1 { throw ValidationError("--top must be ≥ 1, got \(top)") }
        if !["table", "json"].contains(format) { throw ValidationError("--format must be table or json, got \(format)") }
    }

    func run() throws {
        // Standard input reaches rank 0 only: under mpirun rank 0 does the work and the others wait for it.
        try runOnEveryRank("graft predict") { communicator in
            if communicator.isRoot { try classify() }
            try communicator.barrier()
        }
    }

    private func classify() throws {
        let trained = try TrainedRun(directory)
        try trained.requireClassifier()
        let text = trained.recipe.data.format == .textFolder
        let images = trained.readsImages
        var names: [String] = []
        var items: [(text: String, file: String, line: Int)] = []
        for input in inputs.isEmpty ? ["-"] : inputs {
            if input == "-" && images {
                throw DataError(file: "stdin", line: nil, problem: "an image run classifies image files: name them (or a folder)")
            }
            if input == "-" {
                var line = 0
                while let l = readLine() {
                    line += 1
                    guard !l.trimmingCharacters(in: .whitespaces).isEmpty else { continue }
                    items.append((l, "stdin", line)); names.append(text ? excerptOf(l) : "stdin:\(line)")
                }
                continue
            }
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: input, isDirectory: &isFolder) else {
                throw DataError(file: input, line: nil, problem: "no such file or folder")
            }
            let files = isFolder.boolValue
                ? try FileManager.default.contentsOfDirectory(atPath: input).sorted().map { "\(input)/\($0)" } : [input]
            for file in files {
                if images {
                    let isImage = ImageFolder.extensions.contains((file as NSString).pathExtension.lowercased())
                    if isImage || !isFolder.boolValue { items.append(("", file, 0)); names.append(file) }
                    continue
                }
                let content = String(decoding: try readRegularFile(file), as: UTF8.self)
                if text {
                    items.append((content, file, 1)); names.append(file)
                } else {
                    for (i, l) in content.split(separator: "\n", omittingEmptySubsequences: false).enumerated()
                    where !l.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                        items.append((String(l).trimmingCharacters(in: .newlines), file, i + 1)); names.append("\(file):\(i + 1)")
                    }
                }
            }
        }
        guard !items.isEmpty else {
            throw DataError(file: inputs.isEmpty ? "stdin" : inputs.joined(separator: ", "), line: nil, problem: "nothing to classify: no text or rows")
        }
        let model = trained.model
        // One head, or a multi-task run's heads: each its classes and its columns of the output.
        let heads = trained.tasks?.tasks.map { (name: Optional($0.name), classes: $0.classNames, columns: $0.columns) }
            ?? [(name: nil, classes: trained.classNames, columns: 0..<trained.classNames.count)]
        var rows: [[[Float]]] = []
        for start in stride(from: 0, to: items.count, by: 64) {
            let chunk = Array(items[start..<min(start + 64, items.count)])
            let x = text ? trained.inputs(texts: chunk.map(\.text))
                : images ? try trained.inputs(imageFiles: chunk.map(\.file)) : try trained.inputs(csvLines: chunk)
            let logits = withNoGrad { model(x) }
            let perHead = heads.map { head in
                let p = withNoGrad { logits.slice(axis: 1, head.columns).softmax(axis: 1) }
                let k = p.shape[1]
                return (0..<chunk.count).map { i in Array(p.scalars[(i * k)..<((i + 1) * k)]) }
            }
            rows += (0..<chunk.count).map { i in perHead.map { $0[i] } }
        }
        guard heads.count == 1 else { return try printTasks(names: names, heads: heads.map { ($0.name!, $0.classes) }, rows: rows) }
        let classes = trained.classNames
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for (name, probabilities) in zip(names, rows.map { $0[0] }) {
            let ranked = probabilities.indices.sorted { probabilities[$0] > probabilities[$1] }.prefix(top)
            if format == "json" {
                let prediction = Prediction(input: name, label: classes[ranked.first!], top: ranked.map {
                    Prediction.Ranked(label: classes[$0], probability: Double(probabilities[$0]))
                })
                print(String(decoding: try encoder.encode(prediction), as: UTF8.self))
            } else {
                print("\(classes[ranked.first!])\t" + ranked.map { String(format: "%@ %.3f", classes[$0], probabilities[$0]) }.joined(separator: "  ")
                      + "\t\(name)")
            }
        }
    }
}

extension Predict {
    /// A multi-task run's predictions: per input, each task's label and top probabilities (in JSON, `tasks` maps each
    /// task's name to its prediction).
    private func printTasks(names: [String], heads: [(name: String, classes: [String])], rows: [[[Float]]]) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for (input, perHead) in zip(names, rows) {
            let ranked = zip(heads, perHead).map { head, p in
                (head, p, p.indices.sorted { p[$0] > p[$1] }.prefix(top))
            }
            if format == "json" {
                let tasks = Dictionary(uniqueKeysWithValues: ranked.map { head, p, best in
                    (head.name, Prediction.Task(label: head.classes[best.first!], top: best.map {
                        Prediction.Ranked(label: head.classes[$0], probability: Double(p[$0]))
                    }))
                })
                print(String(decoding: try encoder.encode(TaskPrediction(input: input, tasks: tasks)), as: UTF8.self))
            } else {
                print(ranked.map { head, p, best in
                    "\(head.name): \(head.classes[best.first!]) " + best.map { String(format: "(%@ %.3f)", head.classes[$0], p[$0]) }.joined(separator: " ")
                }.joined(separator: "  ") + "\t\(input)")
            }
        }
    }
}

/// One input's line of `--format json` for a multi-task run: `{"input": …, "tasks": {"name": {"label": …, "top": …}}}`.
private struct TaskPrediction: Encodable {
    let input: String
    let tasks: [String: Prediction.Task]
}

/// One input's line of `--format json`: `{"input": …, "label": …, "top": [{"label": …, "probability": …}, …]}`, keys
/// sorted, the most probable class first.
private struct Prediction: Encodable {
    struct Ranked: Encodable {
        let label: String
        let probability: Double
    }

    let input: String
    let label: String
    let top: [Ranked]

    struct Task: Encodable {
        let label: String
        let top: [Ranked]
    }
}

/// The start of a line, for naming it.
private func excerptOf(_ line: String) -> String { line.count <= 40 ? line : String(line.prefix(37)) + "…" }
