"""Record PyTorch's and Hugging Face's learning rates for Graft's schedule tests.

Run from the repo root:
    .cache/torch-venv/bin/python Tests/GraftOptimTests/Fixtures/make_schedule_fixtures.py
Writes schedule_fixtures.json next to this file. Each case names the Swift schedule, its options, the base lr,
and `lrs[t]` = the optimizer's lr after t calls to scheduler.step() (t = 0 is the lr before any step).
"""
import json
import math
import os
import warnings

import torch
from torch.optim import lr_scheduler as S
from transformers import get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup

warnings.filterwarnings("ignore")
STEPS = 40


def optimizer(lr=0.1, momentum=0.0):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr, momentum=momentum)


def record(make, steps=STEPS, lr=0.1):
    opt = optimizer(lr)
    sched = make(opt)
    lrs = [opt.param_groups[0]["lr"]]
    for _ in range(steps):
        opt.step()
        sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


cases = []


def case(name, kind, options, make, base=0.1, steps=STEPS):
    cases.append({"name": name, "kind": kind, "base": base, "options": options,
                  "lrs": record(make, steps, base)})


case("step", "step", {"stepSize": 7, "gamma": 0.5}, lambda o: S.StepLR(o, step_size=7, gamma=0.5))
case("multiStep", "multiStep", {"milestones": [3, 10, 10, 25], "gamma": 0.3},
     lambda o: S.MultiStepLR(o, milestones=[25, 3, 10, 10], gamma=0.3))
case("exponential", "exponential", {"gamma": 0.93}, lambda o: S.ExponentialLR(o, gamma=0.93))
case("cosineAnnealing", "cosineAnnealing", {"tMax": 15, "etaMin": 0.002},
     lambda o: S.CosineAnnealingLR(o, T_max=15, eta_min=0.002))
case("warmRestarts1", "cosineWarmRestarts", {"t0": 6, "tMult": 1, "etaMin": 0.001},
     lambda o: S.CosineAnnealingWarmRestarts(o, T_0=6, T_mult=1, eta_min=0.001))
case("warmRestarts2", "cosineWarmRestarts", {"t0": 3, "tMult": 2, "etaMin": 0.001},
     lambda o: S.CosineAnnealingWarmRestarts(o, T_0=3, T_mult=2, eta_min=0.001), steps=50)
for mode, extra in [("triangular", {}), ("triangular2", {}), ("exp_range", {"gamma": 0.97})]:
    case("cyclic_" + mode, "cyclic",
         {"baseLR": 0.01, "maxLR": 0.1, "stepSizeUp": 4, "stepSizeDown": 6, "mode": mode, "gamma": extra.get("gamma", 1.0)},
         lambda o, mode=mode, extra=extra: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4, step_size_down=6,
                                                      mode=mode, cycle_momentum=False, **extra), base=0.01)
case("cyclic_symmetric", "cyclic",
     {"baseLR": 0.001, "maxLR": 0.006, "stepSizeUp": 5, "mode": "triangular", "gamma": 1.0},
     lambda o: S.CyclicLR(o, base_lr=0.001, max_lr=0.006, step_size_up=5, cycle_momentum=False), base=0.001)
for anneal in ["cos", "linear"]:
    case("oneCycle_" + anneal, "oneCycle",
         {"maxLR": 0.1, "totalSteps": 40, "pctStart": 0.3, "anneal": anneal, "divFactor": 25.0,
          "finalDivFactor": 1e4, "threePhase": False},
         lambda o, anneal=anneal: S.OneCycleLR(o, max_lr=0.1, total_steps=40, anneal_strategy=anneal,
                                               cycle_momentum=False),
         base=0.004, steps=40)
case("oneCycle_threePhase", "oneCycle",
     {"maxLR": 0.2, "totalSteps": 35, "pctStart": 0.25, "anneal": "cos", "divFactor": 10.0,
      "finalDivFactor": 100.0, "threePhase": True},
     lambda o: S.OneCycleLR(o, max_lr=0.2, total_steps=35, pct_start=0.25, div_factor=10.0, final_div_factor=100.0,
                            three_phase=True, cycle_momentum=False),
     base=0.02, steps=35)
case("linearWarmup", "linearWarmupDecay", {"warmupSteps": 6, "totalSteps": 30},
     lambda o: get_linear_schedule_with_warmup(o, num_warmup_steps=6, num_training_steps=30), steps=36)
case("cosineWarmup", "cosineWarmup", {"warmupSteps": 5, "totalSteps": 32, "numCycles": 0.5},
     lambda o: get_cosine_schedule_with_warmup(o, num_warmup_steps=5, num_training_steps=32), steps=36)
case("cosineWarmup_cycles", "cosineWarmup", {"warmupSteps": 4, "totalSteps": 34, "numCycles": 1.5},
     lambda o: get_cosine_schedule_with_warmup(o, num_warmup_steps=4, num_training_steps=34, num_cycles=1.5),
     steps=36)
# Warmup(steps: 5, startFactor: 0.1, then: cosine) == SequentialLR(LinearLR, CosineAnnealingLR, milestones=[5]).
case("warmupThenCosine", "warmupCosineAnnealing",
     {"steps": 5, "startFactor": 0.1, "tMax": 20, "etaMin": 0.001},
     lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.1, total_iters=5),
                                  S.CosineAnnealingLR(o, T_max=20, eta_min=0.001)], milestones=[5]))
case("warmupThenExponential", "warmupExponential", {"steps": 8, "startFactor": 0.25, "gamma": 0.9},
     lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.25, total_iters=8),
                                  S.ExponentialLR(o, gamma=0.9)], milestones=[8]))

# ReduceLROnPlateau: a fixed metric sequence with plateaus, improvements below the threshold, and a rise.
metrics = ([1.0, 0.9, 0.8] + [0.8] * 4 + [0.79995] * 3 + [0.7, 0.6] + [0.65] * 6 + [0.5] + [0.5] * 8
           + [0.3, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2])
plateau_cases = [
    ("plateau_min", {"mode": "min", "factor": 0.5, "patience": 2, "threshold": 1e-4, "thresholdMode": "rel",
                     "cooldown": 0, "minLR": 0.0}, metrics),
    ("plateau_cooldown", {"mode": "min", "factor": 0.3, "patience": 1, "threshold": 1e-4, "thresholdMode": "rel",
                          "cooldown": 2, "minLR": 0.002}, metrics),
    ("plateau_max_abs", {"mode": "max", "factor": 0.1, "patience": 3, "threshold": 0.01, "thresholdMode": "abs",
                         "cooldown": 1, "minLR": 1e-4}, [-m for m in metrics]),
]
for name, o, ms in plateau_cases:
    opt = optimizer(0.1)
    sched = S.ReduceLROnPlateau(opt, mode=o["mode"], factor=o["factor"], patience=o["patience"],
                                threshold=o["threshold"], threshold_mode=o["thresholdMode"], cooldown=o["cooldown"],
                                min_lr=o["minLR"])
    lrs = []
    for m in ms:
        opt.step()
        sched.step(m)
        lrs.append(opt.param_groups[0]["lr"])
    cases.append({"name": name, "kind": "plateau", "base": 0.1, "options": o, "metrics": ms, "lrs": lrs})

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schedule_fixtures.json")
with open(out, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f, indent=None, separators=(",", ":"))
    f.write("\n")
print(f"wrote {len(cases)} cases to {out}")
