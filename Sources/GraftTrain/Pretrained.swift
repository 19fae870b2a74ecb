import GraftCore
import GraftIO
import GraftNN

extension BertModel {
    /// The BERT encoder of a Hugging Face model directory in one call: `config.json` for its shape and
    /// `model.safetensors` for its weights, every tensor present with its shape (an error names the file and the
    /// tensor otherwise).
    public convenience init(pretrained directory: String) throws {
        var rng = RandomGenerator(seed: 0)  // every value is overwritten by the file's
        self.init(try BertConfig(file: "\(directory)/config.json"), using: &rng)
        let file = try SafeTensorsFile(path: "\(directory)/model.safetensors")
        try load(Dictionary(uniqueKeysWithValues: try file.tensors()), strict: true, source: file.path)
    }
}
