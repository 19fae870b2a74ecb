"""Record how PyTorch's OneCycleLR and CyclicLR cycle momentum (SGD) and beta1 (Adam) by default, for Graft's
momentum-cycling tests. Run from the repo root:
    .cache/torch-venv/bin/python Tests/GraftOptimTests/Fixtures/make_momentum_fixtures.py
Writes momentum_fixtures.json next to this file. Each case names the Swift schedule and its options, and records
`lrs[t]` and `momentums[t]` (SGD's momentum or Adam's beta1) after t calls to scheduler.step(), and the parameter
after every optimizer step of a small quadratic problem, so that the cycled momentum is seen acting.
"""
import json
import os

import torch
from torch.optim import lr_scheduler as S

STEPS = 30
cases = []


def case(name, kind, options, optimizer, make, steps=STEPS):
    torch.manual_seed(0)
    p = torch.nn.Parameter(torch.tensor([1.5, -2.0, 0.5]))
    target = torch.tensor([0.3, 0.1, -0.4])
    opt = optimizer([p])
    sched = make(opt)
    group = opt.param_groups[0]
    key = "betas" if "betas" in group else "momentum"
    mom = lambda: group["betas"][0] if key == "betas" else group["momentum"]
    lrs, moms, params = [group["lr"]], [mom()], []
    for _ in range(steps):
        opt.zero_grad()
        ((p - target) ** 2 * torch.tensor([1.0, 3.0, 0.5])).sum().backward()
        opt.step()
        sched.step()
        params.append(p.detach().tolist())
        lrs.append(group["lr"])
        moms.append(mom())
    cases.append({"name": name, "kind": kind, "options": options, "optimizer": optimizer.__name__ if hasattr(optimizer, "__name__") else "",
                  "lrs": lrs, "momentums": moms, "params": params})


def sgd(params):
    return torch.optim.SGD(params, lr=0.05, momentum=0.9)


def adam(params):
    return torch.optim.Adam(params, lr=0.05, betas=(0.9, 0.999))


case("oneCycle_sgd", "oneCycle", {"maxLR": 0.1, "totalSteps": STEPS, "baseMomentum": 0.85, "maxMomentum": 0.95},
     sgd, lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=STEPS))
case("oneCycle_adam_threePhase", "oneCycle",
     {"maxLR": 0.05, "totalSteps": STEPS, "baseMomentum": 0.8, "maxMomentum": 0.9, "threePhase": True, "anneal": "linear"},
     adam, lambda o: S.OneCycleLR(o, max_lr=0.05, total_steps=STEPS, base_momentum=0.8, max_momentum=0.9,
                                  three_phase=True, anneal_strategy="linear"))
case("cyclic_sgd_triangular2", "cyclic",
     {"baseLR": 0.01, "maxLR": 0.1, "stepSizeUp": 4, "stepSizeDown": 6, "mode": "triangular2", "baseMomentum": 0.8,
      "maxMomentum": 0.9},
     sgd, lambda o: S.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=4, step_size_down=6, mode="triangular2"))
case("cyclic_adam_exp_range", "cyclic",
     {"baseLR": 0.005, "maxLR": 0.05, "stepSizeUp": 5, "mode": "exp_range", "gamma": 0.97, "baseMomentum": 0.85,
      "maxMomentum": 0.95},
     adam, lambda o: S.CyclicLR(o, base_lr=0.005, max_lr=0.05, step_size_up=5, mode="exp_range", gamma=0.97,
                                base_momentum=0.85, max_momentum=0.95))

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "momentum_fixtures.json")
with open(out, "w") as f:
    json.dump({"torch": torch.__version__, "cases": cases}, f, separators=(",", ":"))
    f.write("\n")
print(f"wrote {len(cases)} cases to {out}")
