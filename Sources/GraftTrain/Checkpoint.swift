import Foundation
import GraftCore
import GraftIO
import GraftNN
import GraftOptim

/// A checkpoint directory: `model.safetensors` (the state dict under PyTorch/HF names, loadable in Python as is),
/// `optimizer.safetensors` (per-parameter state as `parameter.slot`, PyTorch's slot names) and `state.json`
/// (epoch, step, the monitored value, each group's rate and frozen flag, the last epoch's metrics). Written
/// atomically: a crash or an error leaves the previous checkpoint of that name as it was.
public enum Checkpoint {
    /// Writes the trainer's model and optimizer state and its position after `report` into `directory`.
    public static func save(_ trainer: Trainer, report: EpochReport?, to directory: String,
                            extra: [String: String] = [:]) throws {
        let optimizerState = trainer.optimizer.namedState()
        try AtomicDirectory.write(directory) { dir in
            try SafeTensors.write(trainer.model.stateDict(), to: "\(dir)/model.safetensors", metadata: ["format": "pt"])
            try SafeTensors.write(optimizerState, to: "\(dir)/optimizer.safetensors")
            try AtomicDirectory.writeFile(stateJSON(trainer, report: report, extra: extra), named: "state.json", in: dir)
        }
    }

    /// Loads `directory/model.safetensors` into `model`, strictly: every tensor must match by name and shape.
    public static func loadModel(_ model: Module, from directory: String) throws {
        let file = try SafeTensorsFile(path: "\(directory)/model.safetensors")
        try model.load(Dictionary(uniqueKeysWithValues: try file.tensors()), strict: true, source: file.path)
    }

    static func stateJSON(_ trainer: Trainer, report: EpochReport?, extra: [String: String]) -> String {
        var object: [String: Any] = [
            "epoch": trainer.epochCount,
            "step": trainer.stepCount,
            "groups": trainer.optimizer.groups.enumerated().map { i, g in
                ["name": g.name, "base_lr": jsonNumber(Double(trainer.baseRates[i])), "lr": jsonNumber(Double(g.options.learningRate)),
                 "frozen": g.frozen] as [String: Any]
            },
        ]
        if let best = trainer.bestValue, let epoch = trainer.bestEpoch {
            object["best"] = ["value": jsonNumber(best), "epoch": epoch] as [String: Any]
        }
        if let report { object["metrics"] = report.jsonObject }
        for (k, v) in extra { object[k] = v }
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}

extension EpochReport {
    /// The report as JSON-ready values (for `state.json` and metric logs).
    public var jsonObject: [String: Any] {
        ["epoch": epoch, "train_loss": jsonNumber(trainLoss), "loss": jsonNumber(evaluation.loss),
         "accuracy": jsonNumber(evaluation.accuracy), "macro_f1": jsonNumber(evaluation.macroF1),
         "monitored": jsonNumber(monitored), "improved": improved, "lr": learningRates.map { jsonNumber(Double($0)) }]
    }
}

/// JSON has no NaN or infinity (a diverged loss): those are written as null.
func jsonNumber(_ x: Double) -> Any { x.isFinite ? x : NSNull() }
