import ArgumentParser
import CBLAS
import Foundation
import GraftCore
import GraftIO
import GraftNN

/// MiniLM-L6 forward throughput on real weights, beside PyTorch + Hugging Face on the same weights.
struct BenchMiniLM: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "minilm",
                                                    abstract: "MiniLM-L6 forward throughput (tokens/s).")

    @Option(help: "Directory with model.safetensors and config.json.") var model: String =
        repositoryRoot.appendingPathComponent(".cache/assets/minilm").path
    @Option(help: "Sequences per forward pass.") var batch: Int = 16
    @Option(help: "Tokens per sequence.") var tokens: Int = 128
    @Option(help: "Threads for OpenBLAS (and PyTorch); Graft's own kernels use every core.") var threads: Int = 2
    @Option(help: "Python with PyTorch and transformers (default: the venv launch/torch-env.sh makes).")
    var torchPython: String?
    @Flag(help: "Skip the PyTorch comparison.") var noTorch = false
    @Option(help: "Compare encoders keeping the first N layers, side by side, e.g. 6,2 (no PyTorch comparison).")
    var layers: String?

    func validate() throws {
        guard batch > 0, tokens > 0, tokens <= 512 else { throw ValidationError("--batch must be positive and --tokens in 1...512") }
        if let layers, depths(layers) == nil { throw ValidationError("--layers must be layer counts separated by commas, e.g. 6,2") }
    }

    private func depths(_ text: String) -> [Int]? {
        let values = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        return values.isEmpty || values.contains(nil) ? nil : values.map { $0! }
    }

    func run() throws {
        openblas_set_num_threads(Int32(threads))
        if let layers, let depths = depths(layers) { return try benchDepths(depths, model: model, batch: batch, tokens: tokens) }
        var rng = RandomGenerator(seed: 0)
        let bert = BertModel(try BertConfig(file: "\(model)/config.json"), using: &rng)
        let weights = try SafeTensorsFile(path: "\(model)/model.safetensors")
        try bert.load(Dictionary(uniqueKeysWithValues: try weights.tensors()), strict: true, source: weights.path)
        bert.eval()
        let ids = Indices((0..<batch * tokens).map { _ in 1000 + Int(rng.next() % 20000) }, shape: [batch, tokens])
        let mask = Tensor.ones([batch, tokens])
        let seconds = secondsPerCall(minimum: 3) { _ = withNoGrad { bert(ids, mask: mask) } }
        let graft = Double(batch * tokens) / seconds
        print(String(format: "Graft:   %.0f tokens/s (%.1f ms per %d×%d batch, %.1f GF/s at 22 MFLOP/token)",
                     graft, seconds * 1000, batch, tokens, graft * 22e6 / 1e9))
        guard !noTorch else { return }
        let torch = torchFigures(script: "bench_minilm_torch.py",
                                 arguments: ["--model", model, "--batch", "\(batch)", "--tokens", "\(tokens)",
                                             "--threads", "\(threads)"], python: torchPython)
        if let t = torch["minilm_tokens_per_s"] {
            print(String(format: "PyTorch: %.0f tokens/s; Graft ÷ PyTorch = %.2f× (threads: %d)", t, graft / t, threads))
        }
    }
}
