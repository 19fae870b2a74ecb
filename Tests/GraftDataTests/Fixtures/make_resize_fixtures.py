"""What torch.nn.functional.interpolate(mode="bilinear", antialias=True, align_corners=False) makes of small random
images, shrinking and enlarging by whole and fractional factors (resize_fixtures.json, read by ResizeTests.swift).

    .cache/torch-venv/bin/python Tests/GraftDataTests/Fixtures/make_resize_fixtures.py
"""
import json
import pathlib

import torch
import torch.nn.functional as F

torch.manual_seed(0)
cases = []
for (h, w), (oh, ow) in [((28, 28), (16, 16)), ((8, 8), (16, 16)), ((20, 20), (16, 16)), ((5, 7), (3, 4)),
                         ((6, 4), (9, 10)), ((7, 7), (7, 7)), ((1, 5), (3, 2))]:
    x = torch.rand(2, 2, h, w) * 255
    y = F.interpolate(x, size=(oh, ow), mode="bilinear", antialias=True, align_corners=False)
    cases.append({"shape": list(x.shape), "input": x.flatten().tolist(), "size": [oh, ow], "output": y.flatten().tolist()})
out = pathlib.Path(__file__).with_name("resize_fixtures.json")
out.write_text(json.dumps({"torch": torch.__version__, "cases": cases}))
print(f"wrote {out} ({len(cases)} cases)")
