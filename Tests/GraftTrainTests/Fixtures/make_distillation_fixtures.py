"""Writes distillation.json: PyTorch's value and gradients of the distillation objective Graft's `Distillation`
computes,

    α·T²·kl_div(log_softmax(s/T), softmax(t/T), reduction="batchmean") + (1 − α)·cross_entropy(s, y, label_smoothing)
      + w·mse_loss(linear(f_s, W, b), f_t),

with respect to the student's logits s, its features f_s, and the projection's weight W and bias b.

    /work/main/.cache/torch-venv/bin/python Tests/GraftTrainTests/Fixtures/make_distillation_fixtures.py
"""
import json
import pathlib

import torch
import torch.nn.functional as F

torch.manual_seed(0)
rows, classes, student_width, teacher_width = 6, 5, 4, 3
student = (torch.randn(rows, classes) * 2).double()
teacher = (torch.randn(rows, classes) * 3).double()
labels = torch.tensor([0, 4, 1, 2, 3, 1])
features = torch.randn(rows, student_width).double()
teacher_features = torch.randn(rows, teacher_width).double()
weight = (torch.randn(teacher_width, student_width) * 0.5).double()
bias = (torch.randn(teacher_width) * 0.1).double()


def flat(t):
    return {"shape": list(t.shape), "values": t.detach().flatten().tolist()}


out = {"student": flat(student), "teacher": flat(teacher), "labels": labels.tolist(), "features": flat(features),
       "teacher_features": flat(teacher_features), "weight": flat(weight), "bias": flat(bias), "cases": []}


def case(temperature, alpha, feature_weight, smoothing):
    s, f, w, b = (x.clone().requires_grad_(True) for x in (student, features, weight, bias))
    loss = torch.zeros((), dtype=torch.float64)
    if alpha > 0:
        kl = F.kl_div(F.log_softmax(s / temperature, dim=-1), F.softmax(teacher / temperature, dim=-1), reduction="batchmean")
        loss = loss + alpha * temperature * temperature * kl
    if alpha < 1:
        loss = loss + (1 - alpha) * F.cross_entropy(s, labels, label_smoothing=smoothing)
    if feature_weight > 0:
        loss = loss + feature_weight * F.mse_loss(F.linear(f, w, b), teacher_features)
    grads = torch.autograd.grad(loss, [s, f, w, b], allow_unused=True)
    zero = [torch.zeros_like(x) if g is None else g for g, x in zip(grads, (s, f, w, b))]
    out["cases"].append({"temperature": temperature, "alpha": alpha, "feature_weight": feature_weight,
                         "label_smoothing": smoothing, "value": loss.item(),
                         "grads": [g.flatten().tolist() for g in zero]})


case(4.0, 0.7, 0.5, 0.0)
case(2.0, 1.0, 0.0, 0.0)
case(1.0, 0.3, 2.0, 0.1)
case(3.0, 0.0, 1.0, 0.0)
pathlib.Path(__file__).with_name("distillation.json").write_text(json.dumps(out, indent=1) + "\n")
