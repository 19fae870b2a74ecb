"""Writes torch_written.safetensors (one small tensor per dtype, saved by the `safetensors` package) and expected.json
(each tensor's dtype, shape and values as PyTorch converts them to float32).

Run with a Python that has PyTorch and safetensors (launch/torch-env.sh makes the venv; then `pip install safetensors`):
    .cache/torch-venv/bin/python Tests/GraftIOTests/Fixtures/make_safetensors_fixtures.py
Values are flat, row-major lists of floats; JSON has no NaN or infinity, so those are the strings "nan", "inf", "-inf".
"""
import json
import math
import pathlib

import torch
from safetensors.torch import save_file

here = pathlib.Path(__file__).parent
half_edges = [0.0, -0.0, 1.0, -2.5, 65504.0, 6.1e-05, 6e-08, 3.1415927, float("inf"), float("-inf"), float("nan")]
tensors = {
    "f32": torch.tensor([[0.0, -0.0, 1.5, -2.25], [3.4e38, 1.2e-38, 1e-45, 0.1]], dtype=torch.float32),
    "f16": torch.tensor(half_edges, dtype=torch.float16),
    "bf16": torch.tensor([[0.0, -1.0, 3.0e38, 1e-40], [0.1, -7.5, float("inf"), float("nan")]], dtype=torch.bfloat16),
    "f64": torch.tensor([0.1, -1e300, 1e-300, 2.0**100 + 1, 123.456789], dtype=torch.float64),
    "i64": torch.tensor([[0, -1, 2**40 + 1], [-(2**62), 16777217, 9]], dtype=torch.int64),
    "i32": torch.tensor([-(2**31), 2**31 - 1, 0, 16777217], dtype=torch.int32),
    "u8": torch.tensor([[0, 1, 127], [128, 200, 255]], dtype=torch.uint8),
    "i8": torch.tensor([-128, -1, 0, 127], dtype=torch.int8),
    "i16": torch.tensor([-32768, 32767, -2, 5], dtype=torch.int16),
    "bool": torch.tensor([True, False, True], dtype=torch.bool),
    "f8_e4m3": torch.tensor([0.0, -0.0, 1.0, -1.75, 448.0, 0.001953125, 0.013671875, float("nan")],
                            dtype=torch.float8_e4m3fn),
    "f8_e5m2": torch.tensor([0.0, 1.0, -3.0, 57344.0, 1.52587890625e-05, float("inf"), float("nan")],
                            dtype=torch.float8_e5m2),
    "scalar": torch.tensor(2.5, dtype=torch.float32),
    "empty": torch.zeros((0, 3), dtype=torch.float32),
    "layer.0.weight": torch.arange(24, dtype=torch.float32).reshape(2, 3, 4) / 8 - 1,
}
metadata = {"format": "pt", "source": "make_safetensors_fixtures.py"}
save_file(tensors, here / "torch_written.safetensors", metadata=metadata)


def plain(x):
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


expected = {
    "metadata": metadata,
    "tensors": {
        name: {
            "dtype": str(t.dtype).removeprefix("torch."),
            "shape": list(t.shape),
            "values": [plain(v) for v in t.to(torch.float32).flatten().tolist()],
        }
        for name, t in tensors.items()
    },
}
(here / "expected.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
