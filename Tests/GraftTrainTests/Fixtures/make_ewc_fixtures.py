"""Writes ewc.json: a 4-5-3 MLP (Linear, ReLU, Linear) with random weights, 7 labelled rows, and what PyTorch computes
from them for Graft's EWC tests:

    /work/main/.cache/torch-venv/bin/python Tests/GraftTrainTests/Fixtures/make_ewc_fixtures.py   (needs torch)

`fisher`: the diagonal empirical Fisher, F = mean over rows of (d/dθ cross_entropy(model(x_n), y_n))², one backward per
row. `ewc`: the penalty λ/2·Σ F (θ − θ*)² with θ* the weights above and θ = θ* + `shift`, its value and its gradient
with respect to θ by autograd. Parameter names are the state-dict keys of torch.nn.Sequential held as `layers`.
"""
import json
import pathlib

import torch

torch.manual_seed(0)
layers = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3)).double()
model = torch.nn.Module()
model.layers = layers
inputs = torch.randn(7, 4, dtype=torch.float64)
labels = torch.tensor([0, 2, 1, 1, 0, 2, 2])
names = [n for n, _ in model.named_parameters()]
params = [p for _, p in model.named_parameters()]

fisher = [torch.zeros_like(p) for p in params]
for x, y in zip(inputs, labels):
    loss = torch.nn.functional.cross_entropy(layers(x[None]), y[None])
    for f, g in zip(fisher, torch.autograd.grad(loss, params)):
        f += g * g
fisher = [f / len(labels) for f in fisher]

lam = 3.0
anchor = [p.detach().clone() for p in params]
shift = [torch.randn_like(p) * 0.5 for p in params]
theta = [(a + s).requires_grad_() for a, s in zip(anchor, shift)]
penalty = sum((f * (t - a) ** 2).sum() for f, t, a in zip(fisher, theta, anchor)) * lam / 2
gradient = torch.autograd.grad(penalty, theta)


def flat(t):
    return t.detach().reshape(-1).tolist()


out = {
    "parameters": {n: {"shape": list(p.shape), "values": flat(p)} for n, p in zip(names, params)},
    "inputs": flat(inputs), "labels": labels.tolist(),
    "fisher": {n: flat(f) for n, f in zip(names, fisher)},
    "ewc": {"lambda": lam, "shift": {n: flat(s) for n, s in zip(names, shift)}, "value": penalty.item(),
            "gradient": {n: flat(g) for n, g in zip(names, gradient)}},
}
path = pathlib.Path(__file__).with_name("ewc.json")
path.write_text(json.dumps(out, indent=1) + "\n")
print(f"wrote {path}")
