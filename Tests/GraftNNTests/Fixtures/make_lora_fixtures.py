"""Writes lora_bert_tiny.safetensors: a 2-layer Hugging Face BertModel with random weights, wrapped by PEFT's
get_peft_model with LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"]) and non-zero lora_B, then a
padded batch, the encoder's output, the gradients of the adapter weights, and the weights PEFT's merge_and_unload
gives; for Graft's LoRA parity test.

    .cache/torch-venv/bin/pip install peft
    .cache/torch-venv/bin/python Tests/GraftNNTests/Fixtures/make_lora_fixtures.py   (needs torch, transformers, peft)

Keys: `base.*` the BERT state dict before adapters (Hugging Face names); `adapter.*` the adapter as PEFT saves it
(get_peft_model_state_dict: `base_model.model.<module path>.lora_A.weight`, [r, in], and `lora_B.weight`, [out, r]);
`grad.*` the gradient of the loss with respect to each adapter tensor, under the same names; `merged.*` the base
weights after merge_and_unload; `ids`, `mask` (as floats), `probe` and `hidden` (the last hidden states).
The loss is sum(hidden · probe · mask).
"""
import pathlib

import torch
from peft import LoraConfig, get_peft_model, get_peft_model_state_dict
from safetensors.torch import save_file
from transformers import BertConfig, BertModel

torch.manual_seed(0)
config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=32, max_position_embeddings=20, type_vocab_size=2, layer_norm_eps=1e-12,
                    hidden_act="gelu")
model = BertModel(config).eval()
with torch.no_grad():  # larger than the 0.02 default, so every path carries signal
    for p in model.parameters():
        p.copy_(torch.randn_like(p) * 0.3)
base = {f"base.{k}": v.detach().clone() for k, v in model.state_dict().items()}

lora = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["query", "value"]))
lora.eval()
with torch.no_grad():  # PEFT starts B at zero; a non-zero B makes the update and A's gradient visible
    for name, p in lora.named_parameters():
        if "lora_B" in name:
            p.copy_(torch.randn_like(p) * 0.5)

ids = torch.tensor([[2, 7, 11, 3, 9, 4, 1], [5, 8, 2, 6, 0, 0, 0]])
mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0, 0]])
hidden = lora(input_ids=ids, attention_mask=mask).last_hidden_state
probe = torch.randn_like(hidden)
loss = (hidden * probe * mask.unsqueeze(-1).float()).sum()
loss.backward()

adapter = get_peft_model_state_dict(lora)
named = dict(lora.named_parameters())
grads = {}
for key in adapter:
    # The live parameter carries the adapter's name ("default"), which the saved key leaves out.
    live = key.replace(".lora_A.weight", ".lora_A.default.weight").replace(".lora_B.weight", ".lora_B.default.weight")
    grads[f"grad.{key}"] = named[live].grad.detach().clone()

merged = lora.merge_and_unload()
tensors = {**base, **{f"adapter.{k}": v.detach().clone() for k, v in adapter.items()}, **grads,
           **{f"merged.{k}": v.detach().clone() for k, v in merged.state_dict().items()},
           "ids": ids.float(), "mask": mask.float(), "probe": probe.detach(), "hidden": hidden.detach()}
out = pathlib.Path(__file__).with_name("lora_bert_tiny.safetensors")
save_file({k: v.contiguous() for k, v in tensors.items()}, str(out),
          metadata={"r": "4", "lora_alpha": "8", "target_modules": "query,value"})
print(f"wrote {out} ({len(tensors)} tensors, {len(adapter)} adapter tensors)")
