import Foundation
import GraftCore

/// The fields of a Hugging Face BERT `config.json` that shape the encoder.
public struct BertConfig: Sendable, Equatable {
    public var vocabularySize = 30522
    public var hidden = 768
    public var layers = 12
    public var heads = 12
    public var intermediate = 3072
    public var maxPositions = 512
    public var typeVocabularySize = 2
    public var layerNormEps: Float = 1e-12
    public var hiddenDropout: Float = 0.1
    public var attentionDropout: Float = 0.1

    public init() {}

    /// Reads `config.json`; a missing or mistyped field is an error naming the file and the field, and a FIFO,
    /// device or socket is refused before it is opened.
    public init(file path: String) throws {
        let bytes: [UInt8]
        do { bytes = try readRegularFile(path) } catch { throw ConfigError(file: path, problem: error.problem) }
        let json: HuggingFaceConfig
        do { json = try JSONDecoder().decode(HuggingFaceConfig.self, from: Data(bytes)) } catch let DecodingError.typeMismatch(type, context)
            where !context.codingPath.isEmpty {
            let field = context.codingPath.last!.stringValue
            throw ConfigError(file: path, problem: "field '\(field)' must be \(type == Int.self ? "a positive integer" : type == String.self ? "text" : "a number")")
        } catch {
            throw ConfigError(file: path, problem: "not a JSON object")
        }
        func positive(_ value: Int?, _ key: HuggingFaceConfig.CodingKeys) throws -> Int {
            guard let value, value > 0 else { throw ConfigError(file: path, problem: "field '\(key.rawValue)' must be a positive integer") }
            return value
        }
        if let act = json.hiddenAct, act != "gelu" {
            throw ConfigError(file: path, problem: "hidden_act \(quotedExcerpt(act)) is not supported (only the exact 'gelu')")
        }
        vocabularySize = try positive(json.vocabSize, .vocabSize)
        hidden = try positive(json.hiddenSize, .hiddenSize)
        layers = try positive(json.layers, .layers)
        heads = try positive(json.heads, .heads)
        intermediate = try positive(json.intermediateSize, .intermediateSize)
        maxPositions = try positive(json.maxPositions, .maxPositions)
        typeVocabularySize = try positive(json.typeVocabSize, .typeVocabSize)
        layerNormEps = Float(json.layerNormEps ?? 1e-12)
        hiddenDropout = Float(json.hiddenDropout ?? 0.1)
        attentionDropout = Float(json.attentionDropout ?? 0.1)
        guard hidden % heads == 0 else {
            throw ConfigError(file: path, problem: "hidden_size \(hidden) is not divisible by num_attention_heads \(heads)")
        }
    }
}

/// The fields of `config.json` Graft reads, under Hugging Face's names; the others are ignored.
private struct HuggingFaceConfig: Decodable {
    let vocabSize, hiddenSize, layers, heads, intermediateSize, maxPositions, typeVocabSize: Int?
    let layerNormEps, hiddenDropout, attentionDropout: Double?
    let hiddenAct: String?

    enum CodingKeys: String, CodingKey {
        case vocabSize = "vocab_size", hiddenSize = "hidden_size", layers = "num_hidden_layers"
        case heads = "num_attention_heads", intermediateSize = "intermediate_size", maxPositions = "max_position_embeddings"
        case typeVocabSize = "type_vocab_size", layerNormEps = "layer_norm_eps", hiddenDropout = "hidden_dropout_prob"
        case attentionDropout = "attention_probs_dropout_prob", hiddenAct = "hidden_act"
    }
}

/// A problem in a model configuration file.
public struct ConfigError: Error, CustomStringConvertible {
    public let file: String
    public let problem: String
    public var description: String { "\(file): \(problem)" }
}

/// Word, position and token-type embeddings, summed and normalised (`BertEmbeddings`).
public final class BertEmbeddings: Module {
    public let words: Embedding, positions: Embedding, tokenTypes: Embedding
    public let norm: LayerNorm
    public let dropout: Dropout

    init(_ c: BertConfig, using rng: inout RandomGenerator) {
        words = Embedding(c.vocabularySize, c.hidden, using: &rng)
        positions = Embedding(c.maxPositions, c.hidden, using: &rng)
        tokenTypes = Embedding(c.typeVocabularySize, c.hidden, using: &rng)
        norm = LayerNorm(c.hidden, eps: c.layerNormEps)
        dropout = Dropout(c.hiddenDropout, seed: rng.next())
    }

    override public var children: [(String, Module)] {
        [("word_embeddings", words), ("position_embeddings", positions), ("token_type_embeddings", tokenTypes),
         ("LayerNorm", norm), ("dropout", dropout)]
    }

    /// Older Hugging Face files carry the constant positions 0, 1, … as `position_ids`; they are not state.
    override public var ignoredStateKeys: [String] { ["position_ids"] }

    func callAsFunction(_ ids: Indices, typeIds: Indices?) -> Tensor {
        let (b, s) = (ids.shape[0], ids.shape[1])
        require(s <= positions.weight.shape[0], "BERT: sequence of \(s) tokens exceeds \(positions.weight.shape[0]) positions")
        let position = positions(Indices(Array(0..<s), shape: [s]))
        let types = tokenTypes(typeIds ?? Indices([Int](repeating: 0, count: b * s), shape: [b, s]))
        return dropout(norm(words(ids) + types + position))
    }
}

/// The BERT encoder as Hugging Face's `BertModel` defines it (`embeddings.*`, `encoder.layer.N.*`,
/// `pooler.*`), configured from `config.json`; MiniLM-L6 is this with hidden 384, 6 layers, 12 heads.
public final class BertModel: Module {
    public let config: BertConfig
    public let embeddings: BertEmbeddings
    public let layers: [TransformerEncoderLayer]
    public let pooler: Linear
    private let encoder: Group, poolerGroup: Group

    public init(_ config: BertConfig, using rng: inout RandomGenerator) {
        self.config = config
        embeddings = BertEmbeddings(config, using: &rng)
        layers = (0..<config.layers).map { _ in
            TransformerEncoderLayer(hidden: config.hidden, heads: config.heads, intermediate: config.intermediate,
                                    eps: config.layerNormEps, dropout: config.hiddenDropout,
                                    attentionDropout: config.attentionDropout, using: &rng)
        }
        pooler = Linear(config.hidden, config.hidden, using: &rng)
        encoder = Group([("layer", Group(layers.enumerated().map { ("\($0.offset)", $0.element) }))])
        poolerGroup = Group([("dense", pooler)])
    }

    override public var children: [(String, Module)] {
        [("embeddings", embeddings), ("encoder", encoder), ("pooler", poolerGroup)]
    }

    /// The natural depth order for freezing: embeddings, each encoder layer, the pooler.
    public var blocks: [(String, Module)] {
        [("embeddings", embeddings)] + layers.enumerated().map { ("encoder.layer.\($0.offset)", $0.element) }
            + [("pooler", poolerGroup)]
    }

    /// Last hidden states [B, S, H] for token ids [B, S]; `mask` [B, S] is 1 for tokens and 0 for padding.
    public func callAsFunction(_ ids: Indices, typeIds: Indices? = nil, mask: Tensor? = nil) -> Tensor {
        require(ids.shape.count == 2, "BERT: token ids must be [batch, sequence], got \(ids.shape)")
        if let mask { require(mask.shape == ids.shape, "BERT: mask \(mask.shape) does not match ids \(ids.shape)") }
        let additive = mask.map(Tensor.additiveAttentionMask)
        return layers.reduce(embeddings(ids, typeIds: typeIds)) { $1($0, additiveMask: additive) }
    }

    /// tanh(dense(first token)): BERT's pooled output [B, H].
    public func pooled(_ hidden: Tensor) -> Tensor {
        pooler(hidden.slice(axis: 1, 0..<1).squeezed(1)).tanh()
    }

    /// The mask-weighted mean of the last hidden states [B, H]; `mask` [B, S] is 1 for tokens, 0 for padding.
    public static func meanPooled(_ hidden: Tensor, mask: Tensor) -> Tensor {
        let m = mask.unsqueezed(-1)
        return (hidden * m).sum(axes: [1]) / m.sum(axes: [1]).clamp(min: 1e-9)
    }

    /// Sentence embeddings as sentence-transformers computes them: `meanPooled`, L2-normalised.
    public static func meanPooledEmbedding(_ hidden: Tensor, mask: Tensor) -> Tensor {
        let mean = meanPooled(hidden, mask: mask)
        return mean / (mean * mean).sum(axes: [1], keepDims: true).sqrt().clamp(min: 1e-12)
    }
}

/// How a classifier turns BERT's hidden states into one vector per sequence.
public enum BertPooling: String, Sendable, CaseIterable {
    /// BERT's pooler: tanh(dense(first token)), as `BertForSequenceClassification`.
    case cls
    /// The mask-weighted mean of the last hidden states, as sentence-transformers models are trained to be read.
    case mean
    /// That mean, L2-normalised: a sentence-transformers embedding.
    case normalizedMean = "normalized-mean"
}

/// BERT with a classification head, as `BertForSequenceClassification` (`bert.*`, `classifier.*`), pooling by
/// BERT's pooler or by the mean of the hidden states.
///
/// As a `BlockClassifier` it takes token ids as a float tensor [B, S] (exact up to 2²⁴) and masks the positions
/// holding `padId`: what `WordPieceTokenizer` padding produces, so a batch needs no separate mask.
public final class BertClassifier: Module, BlockClassifier {
    public let bert: BertModel
    public let dropout: Dropout
    public private(set) var classifier: Linear
    public let pooling: BertPooling
    public let padId: Int

    public init(_ bert: BertModel, classes: Int, pooling: BertPooling = .cls, padId: Int = 0,
                using rng: inout RandomGenerator) {
        self.bert = bert
        dropout = Dropout(bert.config.hiddenDropout, seed: rng.next())
        classifier = Linear(bert.config.hidden, classes, using: &rng)
        (self.pooling, self.padId) = (pooling, padId)
    }

    override public var children: [(String, Module)] { [("bert", bert), ("dropout", dropout), ("classifier", classifier)] }

    /// The encoder's blocks under `bert.`, then the head. Pooling by mean leaves the pooler out: it is not used.
    public var blocks: [(String, Module)] {
        bert.blocks.filter { pooling == .cls || $0.0 != "pooler" }.map { ("bert.\($0.0)", $0.1) } + [("classifier", classifier)]
    }

    public var featureCount: Int { bert.config.hidden }

    override public func replaceChild(named name: String, with module: Module) throws {
        guard name == "classifier" else { return try super.replaceChild(named: name, with: module) }
        guard let head = module as? Linear, head.inFeatures == bert.config.hidden else {
            throw ModuleError.wrongType(path: name, expected: "Linear from \(bert.config.hidden) features", found: "\(type(of: module))")
        }
        classifier = head
    }

    /// Installs a freshly initialised head for `classes` classes.
    public func replaceHead(classes: Int, using rng: inout RandomGenerator) {
        classifier = Linear(bert.config.hidden, classes, using: &rng)
    }

    /// The pooled vector [B, H] for token ids [B, S].
    public func features(_ ids: Indices, typeIds: Indices? = nil, mask: Tensor? = nil) -> Tensor {
        let hidden = bert(ids, typeIds: typeIds, mask: mask)
        switch pooling {
        case .cls: return bert.pooled(hidden)
        case .mean: return BertModel.meanPooled(hidden, mask: mask ?? Tensor.ones(ids.shape))
        case .normalizedMean: return BertModel.meanPooledEmbedding(hidden, mask: mask ?? Tensor.ones(ids.shape))
        }
    }

    /// Class logits [B, classes].
    public func callAsFunction(_ ids: Indices, typeIds: Indices? = nil, mask: Tensor? = nil) -> Tensor {
        head(features(ids, typeIds: typeIds, mask: mask))
    }

    /// The pooled vector for token ids held as floats [B, S], padding masked.
    public func features(_ tokens: Tensor) -> Tensor {
        let (ids, mask) = tokenInputs(tokens)
        return features(ids, mask: mask)
    }

    public func head(_ features: Tensor) -> Tensor { classifier(dropout(features)) }

    /// Class logits for token ids held as floats [B, S], padding masked.
    public func callAsFunction(_ tokens: Tensor) -> Tensor { head(features(tokens)) }

    /// Ids and the padding mask from token ids held as floats.
    private func tokenInputs(_ tokens: Tensor) -> (Indices, Tensor) {
        require(tokens.rank == 2, "BertClassifier: token ids must be [batch, sequence], got \(tokens.shape)")
        let values = tokens.scalars
        let ids = values.map { v in
            let id = Int(v)
            require(Float(id) == v && id >= 0 && id < bert.config.vocabularySize,
                    "BertClassifier: \(v) is not a token id of a \(bert.config.vocabularySize)-word vocabulary")
            return id
        }
        return (Indices(ids, shape: tokens.shape), Tensor(ids.map { $0 == padId ? 0 : 1 }, shape: tokens.shape))
    }
}
