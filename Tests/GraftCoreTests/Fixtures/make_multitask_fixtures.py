"""Writes multitask_loss.json: multi-task losses of a three-task head as PyTorch computes them, for Graft's parity
tests (MultiTaskLossTests).

    .cache/torch-venv/bin/python Tests/GraftCoreTests/Fixtures/make_multitask_fixtures.py

The head's 14 logits per row are three tasks' blocks: digit (10 classes), parity (2: even, odd) and high
(2: digit < 5, digit >= 5); each task's labels derive from the row's digit. Written are the logits, digits, the
log-variances s and fixed weights w; each task's F.cross_entropy (mean over rows) L_k; the uncertainty-weighted
loss sum_k exp(-s_k) L_k + s_k and the weighted sum sum_k w_k L_k with their gradients with respect to the logits
(and s); and DWA weights K softmax(r / T) with r_k = L_k(t-1) / L_k(t-2) for a made-up loss history.
"""
import json
import pathlib

import torch
import torch.nn.functional as F

torch.manual_seed(0)
rows = 6
logits = (torch.randn(rows, 14) * 2).requires_grad_(True)
digits = torch.tensor([3, 8, 0, 5, 9, 2])
labels = [digits, digits % 2, (digits >= 5).long()]
blocks = [(0, 10), (10, 12), (12, 14)]
s = torch.tensor([0.3, -0.7, 1.1], requires_grad=True)
w = torch.tensor([1.0, 0.5, 2.0])

losses = torch.stack([F.cross_entropy(logits[:, a:b], y) for (a, b), y in zip(blocks, labels)])
uncertainty = (torch.exp(-s) * losses + s).sum()
g_logits, g_s = torch.autograd.grad(uncertainty, [logits, s], retain_graph=True)
weighted = (w * losses).sum()
(g_weighted,) = torch.autograd.grad(weighted, [logits])

history = torch.tensor([[2.0, 0.6, 0.7], [1.5, 0.3, 0.6]], dtype=torch.float64)
temperature = 2.0
ratios = history[-1] / history[-2]
dwa = 3 * torch.softmax(ratios / temperature, dim=0)

out = {
    "logits": logits.detach().flatten().tolist(),
    "digits": digits.tolist(),
    "log_variances": s.detach().tolist(),
    "weights": w.tolist(),
    "task_losses": losses.detach().tolist(),
    "uncertainty": uncertainty.item(),
    "uncertainty_grad_logits": g_logits.flatten().tolist(),
    "uncertainty_grad_log_variances": g_s.tolist(),
    "weighted": weighted.item(),
    "weighted_grad_logits": g_weighted.flatten().tolist(),
    "dwa_history": history.tolist(),
    "dwa_temperature": temperature,
    "dwa_weights": dwa.tolist(),
}
path = pathlib.Path(__file__).with_name("multitask_loss.json")
path.write_text(json.dumps(out, indent=1) + "\n")
print(f"wrote {path}")
