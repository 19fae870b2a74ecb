"""Writes core_ops.json: inputs, outputs and gradients of PyTorch ops that Graft's core mirrors.

Run with a Python that has PyTorch (launch/torch-env.sh makes one):
    .cache/torch-venv/bin/python Tests/GraftCoreTests/Fixtures/make_core_fixtures.py
Each case holds flat float lists with their shapes; gradients are of sum(output * probe) for a fixed random probe.
"""
import json
import pathlib

import torch
import torch.nn.functional as F

torch.manual_seed(0)
cases = {}


def t(shape, scale=1.0):
    return (torch.rand(shape, dtype=torch.float64) * 2 - 1) * scale


def record(name, fn, inputs, extra=None):
    leaves = [x.clone().float().requires_grad_(True) for x in inputs]
    out = fn(*leaves)
    probe = t(out.shape).float()
    grads = torch.autograd.grad((out * probe).sum(), leaves, allow_unused=True)
    cases[name] = {
        "inputs": [{"shape": list(x.shape), "values": x.detach().flatten().tolist()} for x in leaves],
        "output": {"shape": list(out.shape), "values": out.detach().flatten().tolist()},
        "probe": probe.flatten().tolist(),
        "grads": [None if g is None else g.flatten().tolist() for g in grads],
        **(extra or {}),
    }


x = t([4, 7], 3)
record("gelu", F.gelu, [x])
record("softmax", lambda a: F.softmax(a, dim=-1), [x])
record("log_softmax", lambda a: F.log_softmax(a, dim=0), [x])
targets = [1, 6, 3, 0]
record("cross_entropy", lambda a: F.cross_entropy(a, torch.tensor(targets), label_smoothing=0.1, ignore_index=3),
       [x], {"targets": targets, "label_smoothing": 0.1, "ignore_index": 3})
record("layer_norm", lambda a, w, b: F.layer_norm(a, (7,), w, b, eps=1e-12), [x, t([7]), t([7])])

xb, rm, rv = t([3, 4, 2, 5], 2), t([4]), t([4]).abs() + 0.5
rm_after, rv_after = rm.clone().float(), rv.clone().float()
record("batch_norm_train",
       lambda a, w, b: F.batch_norm(a, rm_after, rv_after, w, b, training=True, momentum=0.1, eps=1e-3),
       [xb, t([4]), t([4])],
       {"running_mean": rm.float().tolist(), "running_var": rv.float().tolist()})
cases["batch_norm_train"]["running_mean_after"] = rm_after.tolist()
cases["batch_norm_train"]["running_var_after"] = rv_after.tolist()

xc = t([2, 4, 9, 8])
record("conv2d_stride2_same", lambda a, w, b: F.conv2d(F.pad(a, (0, 1, 1, 1)), w, b, stride=2),
       [xc, t([6, 4, 3, 3]), t([6])])
record("conv2d_dilated_groups", lambda a, w: F.conv2d(a, w, None, stride=1, padding=(2, 1), dilation=(2, 1), groups=2),
       [xc, t([6, 2, 3, 2])])
record("conv2d_depthwise", lambda a, w, b: F.conv2d(a, w, b, stride=2, padding=2, groups=4),
       [xc, t([4, 1, 5, 5]), t([4])])
record("max_pool2d", lambda a: F.max_pool2d(a, 3, stride=2, padding=1), [xc])
record("avg_pool2d", lambda a: F.avg_pool2d(a, 3, stride=2, padding=1), [xc])
record("adaptive_avg_pool2d", lambda a: F.adaptive_avg_pool2d(a, (4, 3)), [xc])

path = pathlib.Path(__file__).with_name("core_ops.json")
path.write_text(json.dumps({"torch": torch.__version__, "cases": cases}, separators=(",", ":")))
print(f"wrote {path} ({path.stat().st_size} bytes, {len(cases)} cases, torch {torch.__version__})")
