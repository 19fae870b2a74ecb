"""Writes losses.json: PyTorch's values and gradients of the losses Graft's `Loss` mirrors.

    .cache/torch-venv/bin/python Tests/GraftNNTests/Fixtures/make_loss_fixtures.py
"""
import json
import pathlib

import torch
import torch.nn.functional as F

torch.manual_seed(0)
logits = (torch.randn(6, 4) * 2).requires_grad_(True)
targets = torch.tensor([0, 3, 1, 2, 3, 1])
weights = torch.tensor([0.5, 2.0, 1.0, 3.0])
out = {"logits": logits.detach().flatten().tolist(), "targets": targets.tolist(), "weights": weights.tolist()}


def record(name, value):
    (g,) = torch.autograd.grad(value, [logits])
    out[name] = {"value": value.item(), "grad": g.flatten().tolist()}


record("ce_weighted", F.cross_entropy(logits, targets, weight=weights))
record("ce_weighted_smooth", F.cross_entropy(logits, targets, weight=weights, label_smoothing=0.2))
record("ce_weighted_ignore", F.cross_entropy(logits, targets, weight=weights, ignore_index=3))
binary = (torch.rand(6, 4) > 0.5).float()
out["binary"] = binary.flatten().tolist()
record("bce", F.binary_cross_entropy_with_logits(logits, binary))
record("bce_pos", F.binary_cross_entropy_with_logits(logits, binary, pos_weight=torch.full((4,), 3.0)))
regress = torch.randn(6, 4)
out["regress"] = regress.flatten().tolist()
record("mse", F.mse_loss(logits, regress))
teacher = torch.randn(6, 4) * 3
out["teacher"] = teacher.flatten().tolist()
record("kd", F.kl_div(F.log_softmax(logits / 4, dim=-1), F.softmax(teacher / 4, dim=-1), reduction="batchmean") * 16)

path = pathlib.Path(__file__).with_name("losses.json")
path.write_text(json.dumps(out))
print(f"wrote {path}")
