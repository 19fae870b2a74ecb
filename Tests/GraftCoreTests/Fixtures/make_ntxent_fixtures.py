"""Writes ntxent.json: SimCLR's NT-Xent loss and its gradient, computed by PyTorch, for Graft's `Tensor.ntXent`.

    .cache/torch-venv/bin/python Tests/GraftCoreTests/Fixtures/make_ntxent_fixtures.py

The formula of Chen et al. (2020), with the two views of row k at rows 2k and 2k + 1: z normalised, similarities
z·zᵀ / τ, a view's similarity to itself masked out, and the mean over the 2N anchors of the cross-entropy of picking
the other view of the same row.
"""
import json
import pathlib

import torch
import torch.nn.functional as F


def nt_xent(z, temperature):
    unit = F.normalize(z, dim=1)
    logits = unit @ unit.T / temperature
    logits = logits.masked_fill(torch.eye(len(z), dtype=torch.bool), float("-inf"))
    partners = torch.arange(len(z)) ^ 1
    return F.cross_entropy(logits, partners)


torch.manual_seed(0)
cases = []
for rows, width, temperature in [(3, 5, 0.5), (4, 3, 0.1), (1, 4, 1.0)]:
    z = torch.randn(2 * rows, width, dtype=torch.float64, requires_grad=True)
    loss = nt_xent(z, temperature)
    (g,) = torch.autograd.grad(loss, [z])
    unit = F.normalize(z.detach(), dim=1)
    similarity = (unit @ unit.T).fill_diagonal_(float("-inf"))
    retrieved = int((similarity.argmax(dim=1) == torch.arange(2 * rows) ^ 1).sum())
    cases.append({"shape": [2 * rows, width], "temperature": temperature, "z": z.detach().flatten().tolist(),
                  "loss": loss.item(), "grad": g.flatten().tolist(), "retrieved": retrieved})

path = pathlib.Path(__file__).with_name("ntxent.json")
path.write_text(json.dumps({"cases": cases}))
print(f"wrote {path}")
