"""Checks launch/convert_pth.py against PyTorch: every tensor of the converted safetensors file must equal what
`torch.load(weights_only=True)` reads from the legacy .pth, with the same name, shape and dtype family.

    .cache/torch-venv/bin/python Tests/GraftDataTests/Fixtures/check_pth_conversion.py \
        [IN.pth [OUT.safetensors]]

Defaults to the EfficientNet-Lite0 files launch/assets.sh puts in $GRAFT_ASSETS (.cache/assets). Exits 0 after
a skip message when torch is not installed or the files are missing, 1 on any difference. The safetensors file is
read with numpy and the standard library only, so this also checks the header layout the converter writes.
"""
import json
import os
import pathlib
import struct
import sys

import numpy as np

repo = pathlib.Path(__file__).resolve().parents[3]
assets = pathlib.Path(os.environ.get("GRAFT_ASSETS", repo / ".cache" / "assets"))
src = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else assets / "efficientnet" / "efficientnet-lite0.pth")
dst = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else src.with_suffix(".safetensors"))

try:
    import torch
except ImportError:
    print("check_pth_conversion: skipped, torch is not installed (launch/torch-env.sh makes a venv with it)")
    sys.exit(0)
for path in (src, dst):
    if not path.is_file():
        print(f"check_pth_conversion: skipped, {path} is missing (run launch/assets.sh efficientnet)")
        sys.exit(0)


def read_safetensors(path):
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert (8 + n) % 8 == 0, f"{path}: data does not start 8-byte aligned"
    header = json.loads(raw[8:8 + n])
    assert list(header) == sorted(header), f"{path}: header not sorted by name"
    dtypes = {"F32": np.float32, "I64": np.int64, "BOOL": np.bool_}
    data, end = raw[8 + n:], 0
    out = {}
    for name, info in header.items():
        begin, stop = info["data_offsets"]
        assert begin == end, f"{path}: {name} does not follow the previous tensor"
        end = stop
        out[name] = np.frombuffer(data[begin:stop], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
    assert end == len(data), f"{path}: {len(data) - end} bytes after the last tensor"
    return out


reference = torch.load(src, map_location="cpu", weights_only=True)
converted = read_safetensors(dst)
problems = []
if sorted(reference) != sorted(converted):
    problems.append(f"key sets differ: only in .pth {sorted(set(reference) - set(converted))[:5]}, "
                    f"only in safetensors {sorted(set(converted) - set(reference))[:5]}")
for name in sorted(set(reference) & set(converted)):
    t, a = reference[name].detach(), converted[name]
    expected = t.numpy() if t.dtype != torch.bfloat16 else t.float().numpy()
    want_dtype = np.float32 if t.is_floating_point() else (np.bool_ if t.dtype == torch.bool else np.int64)
    if a.dtype != want_dtype:
        problems.append(f"{name}: dtype {a.dtype}, expected {np.dtype(want_dtype)} for torch {t.dtype}")
    elif tuple(a.shape) != tuple(t.shape):
        problems.append(f"{name}: shape {list(a.shape)}, torch has {list(t.shape)}")
    elif not np.array_equal(a, expected.astype(want_dtype)):
        problems.append(f"{name}: values differ (max |diff| {np.abs(a - expected.astype(want_dtype)).max()})")

for p in problems:
    print(f"check_pth_conversion: {p}", file=sys.stderr)
if problems:
    sys.exit(1)
count = sum(t.numel() for t in reference.values())
print(f"check_pth_conversion: {len(reference)} tensors ({count} values) equal torch.load's (torch {torch.__version__})")
