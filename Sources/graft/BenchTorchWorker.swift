import Foundation

/// launch/bench_compare_torch.py kept running beside `graft bench compare`, asked for one timed round at a time so
/// that Graft's and PyTorch's rounds interleave. Its stderr goes straight to the terminal.
final class BenchTorchWorker {
    private let process = Process()
    private let input: FileHandle
    private let output: FileHandle
    private var buffered = Data()

    /// Starts the worker with `threads` intra-op threads, or prints why PyTorch is left out and returns nil.
    init?(python: String?, threads: Int) {
        let python = python ?? repositoryRoot.appendingPathComponent(".cache/torch-venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            print("PyTorch: not installed (\(python) missing; run launch/torch-env.sh); Graft's figures only.")
            return nil
        }
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [repositoryRoot.appendingPathComponent("launch/bench_compare_torch.py").path,
                             "--threads", "\(threads)"]
        var environment = ProcessInfo.processInfo.environment
        environment["OMP_NUM_THREADS"] = "\(threads)"
        process.environment = environment
        let toWorker = Pipe(), fromWorker = Pipe()
        process.standardInput = toWorker
        process.standardOutput = fromWorker
        (input, output) = (toWorker.fileHandleForWriting, fromWorker.fileHandleForReading)
        do { try process.run() } catch {
            print("PyTorch: cannot run \(python): \(error); Graft's figures only.")
            return nil
        }
    }

    /// Builds and warms up `key` and sizes its rounds to at least `roundSeconds`; false (with a message) on failure.
    func prepare(_ key: String, roundSeconds: Double) -> Bool {
        ask("prepare \(key) \(roundSeconds)", expecting: "READY") != nil
    }

    /// Seconds per call over one round of `key`, or nil (with a message) on failure.
    func time(_ key: String) -> Double? {
        ask("time \(key)", expecting: "TIME").flatMap { $0.count == 3 ? Double($0[2]) : nil }
    }

    /// Frees `key`'s model and inputs.
    func release(_ key: String) { _ = ask("release \(key)", expecting: "RELEASED") }

    /// Closes the worker's input (it exits at end of input) and waits for it.
    func close() {
        try? input.close()
        process.waitUntilExit()
    }

    private func ask(_ command: String, expecting tag: String) -> [Substring]? {
        guard process.isRunning else { return nil }
        do { try input.write(contentsOf: Data((command + "\n").utf8)) } catch {
            print("PyTorch: worker stopped (\(error))")
            return nil
        }
        guard let line = readLine() else {
            print("PyTorch: worker exited during '\(command)'")
            return nil
        }
        let words = line.split(separator: " ")
        guard words.first.map(String.init) == tag else {
            print("PyTorch: \(line)")
            return nil
        }
        return words
    }

    private func readLine() -> String? {
        while true {
            if let newline = buffered.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: buffered[..<newline], as: UTF8.self)
                buffered.removeSubrange(...newline)
                return line
            }
            let chunk = output.availableData
            if chunk.isEmpty { return nil }
            buffered.append(chunk)
        }
    }
}
