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

    func validate() throws {
        guard batch > 0, tokens > 0, tokens <= 512 else { throw ValidationError("--batch must be positive and --tokens in 1...512") }
    }

    func run() throws {
        openblas_set_num_threads(Int32(threads))
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
