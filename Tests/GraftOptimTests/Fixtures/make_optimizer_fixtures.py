"""Writes optimizer_steps.json: parameter values after every step of torch.optim optimizers on a fixed gradient
sequence, for Tests/GraftOptimTests/OptimizerTests.swift.

Run with the project's torch venv: .cache/torch-venv/bin/python Tests/GraftOptimTests/Fixtures/make_optimizer_fixtures.py
Two parameters in two groups with their own lr / weight decay. The bias has no gradient on some steps (None), which
checks that a parameter without a gradient is skipped and its state starts at its first gradient, as in PyTorch.
"""
import json
import os

import torch

STEPS = 25
NO_BIAS_GRAD = {0, 1, 2, 10}

# (name, optimizer class, shared keyword arguments, per-group (lr, weight_decay) for weight and bias)
CONFIGS = [
    ("sgd_plain", "SGD", {}, [(0.1, 0.0), (0.05, 0.0)]),
    ("sgd_momentum", "SGD", {"momentum": 0.9, "dampening": 0.1}, [(0.05, 0.01), (0.1, 0.1)]),
    ("sgd_nesterov", "SGD", {"momentum": 0.8, "nesterov": True}, [(0.05, 0.01), (0.02, 0.0)]),
    ("adam", "Adam", {}, [(0.01, 0.0), (0.02, 0.0)]),
    ("adam_wd", "Adam", {}, [(0.01, 0.1), (0.02, 0.01)]),
    ("adam_amsgrad", "Adam", {"amsgrad": True, "betas": (0.8, 0.99)}, [(0.01, 0.05), (0.02, 0.0)]),
    ("adamw", "AdamW", {}, [(0.01, 0.1), (0.02, 0.01)]),
    ("rmsprop", "RMSprop", {"alpha": 0.9}, [(0.01, 0.0), (0.005, 0.0)]),
    ("rmsprop_centered_momentum", "RMSprop", {"centered": True, "momentum": 0.9, "eps": 1e-6},
     [(0.01, 0.01), (0.005, 0.1)]),
]


def main():
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(1234)
    init_w = torch.randn(3, 4, generator=gen)
    init_b = torch.randn(4, generator=gen)
    grads = [(torch.randn(3, 4, generator=gen), None if s in NO_BIAS_GRAD else torch.randn(4, generator=gen))
             for s in range(STEPS)]
    cases = []
    for name, kind, kwargs, group_opts in CONFIGS:
        w = init_w.clone().requires_grad_(True)
        b = init_b.clone().requires_grad_(True)
        groups = [{"params": [p], "lr": lr, "weight_decay": wd} for p, (lr, wd) in zip((w, b), group_opts)]
        opt = getattr(torch.optim, kind)(groups, foreach=False, **kwargs)
        after = []
        for gw, gb in grads:
            w.grad = gw.clone()
            b.grad = None if gb is None else gb.clone()
            opt.step()
            after.append({"weight": w.detach().flatten().tolist(), "bias": b.detach().flatten().tolist()})
        cases.append({"name": name, "optimizer": kind, "options": {k: list(v) if isinstance(v, tuple) else v
                                                                   for k, v in kwargs.items()},
                      "groups": [{"lr": lr, "weight_decay": wd} for lr, wd in group_opts], "after": after})
    out = {
        "torch": torch.__version__,
        "initial": {"weight": init_w.flatten().tolist(), "bias": init_b.flatten().tolist()},
        "grads": [{"weight": gw.flatten().tolist(), "bias": None if gb is None else gb.flatten().tolist()}
                  for gw, gb in grads],
        "cases": cases,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optimizer_steps.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
    print(f"wrote {path}: {len(cases)} cases x {STEPS} steps")


if __name__ == "__main__":
    main()
