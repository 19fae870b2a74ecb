"""Writes bert_tiny.json: a 2-layer Hugging Face BertModel with random weights, a padded batch, its outputs and
weight gradients, for Graft's BERT parity test.

    .cache/torch-venv/bin/python Tests/GraftNNTests/Fixtures/make_bert_fixtures.py   (needs torch and transformers)
"""
import json
import pathlib

import torch
from transformers import BertConfig, BertModel

torch.manual_seed(0)
config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=32, max_position_embeddings=20, type_vocab_size=2, layer_norm_eps=1e-12,
                    hidden_act="gelu")
model = BertModel(config).eval()
with torch.no_grad():  # larger than the 0.02 default, so every path carries signal
    for p in model.parameters():
        p.copy_(torch.randn_like(p) * 0.3)

ids = torch.tensor([[2, 7, 11, 3, 9, 4, 1], [5, 8, 2, 6, 0, 0, 0]])
types = torch.tensor([[0, 0, 0, 1, 1, 1, 1], [0, 0, 0, 0, 0, 0, 0]])
mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0]])
out = model(input_ids=ids, token_type_ids=types, attention_mask=mask)
hidden, pooled = out.last_hidden_state, out.pooler_output
probe_h, probe_p = torch.randn_like(hidden), torch.randn_like(pooled)
# Padded positions' hidden states are not compared (they attend normally, but nothing uses them).
keep = mask.unsqueeze(-1).float()
loss = (hidden * probe_h * keep).sum() + (pooled * probe_p).sum()
named = dict(model.named_parameters())
wanted = ["embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.query.weight",
          "encoder.layer.1.intermediate.dense.weight", "encoder.layer.1.output.LayerNorm.weight", "pooler.dense.bias"]
grads = torch.autograd.grad(loss, [named[k] for k in wanted])


def flat(t):
    return {"shape": list(t.shape), "values": t.detach().float().flatten().tolist()}


state = {k: flat(v) for k, v in model.state_dict().items()}
fixture = {
    "config": config.to_dict(), "state": state,
    "ids": ids.flatten().tolist(), "types": types.flatten().tolist(), "mask": mask.flatten().tolist(),
    "shape": list(ids.shape), "hidden": flat(hidden), "pooled": flat(pooled),
    "probe_hidden": flat(probe_h), "probe_pooled": flat(probe_p),
    "grads": {k: flat(g) for k, g in zip(wanted, grads)},
}
path = pathlib.Path(__file__).with_name("bert_tiny.json")
path.write_text(json.dumps(fixture, separators=(",", ":")))
print(f"wrote {path} ({path.stat().st_size} bytes)")
