"""Writes image_fixtures.json: what PIL and PyTorch make of the photos and images ImageTests checks Graft against.

Run with a Python that has PyTorch and Pillow (launch/torch-env.sh, then `pip install pillow` into that venv), after
`launch/assets.sh sklearn`:
    .cache/torch-venv/bin/python Tests/GraftDataTests/Fixtures/make_image_fixtures.py

- photos: for flower.jpg and china.jpg, PIL's decoded size, ~20 RGB pixels at fixed and seeded positions, the mean
  of each channel, and sampled values of the EfficientNet input PIL + torch make from it (square center crop with
  torchvision's offsets, F.interpolate bilinear, align_corners=False, no antialias, then (x - 127) / 128).
- resize: small seeded random uint8 RGB images and F.interpolate's float output for several target sizes.
- tiny_jpegs: 8x8 grayscale and CMYK JPEGs written by PIL (base64) with PIL's RGB decode of each.
"""
import base64
import io
import json
import os
import pathlib
import random

import numpy as np
import torch
import torch.nn.functional as F
import PIL
from PIL import Image, features

here = pathlib.Path(__file__).resolve().parent
repo = here.parents[2]
assets = pathlib.Path(os.environ.get("GRAFT_ASSETS", repo / ".cache" / "assets"))


def efficientnet_input(rgb):
    """[1, 3, 224, 224] float tensor: square center crop, bilinear resize to 224, (x - 127) / 128."""
    x = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).float()
    h, w = x.shape[2:]
    s = min(h, w)
    top, left = int(round((h - s) / 2.0)), int(round((w - s) / 2.0))
    x = x[:, :, top:top + s, left:left + s]
    x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False, antialias=False)
    return (x - 127) / 128


def photo(name):
    image = Image.open(assets / "images" / name)
    assert image.mode == "RGB", f"{name} decodes as {image.mode}"
    rgb = np.array(image)  # a writable copy, as torch.from_numpy wants
    h, w, _ = rgb.shape
    rng = random.Random(name)
    points = [(0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1), (w // 2, h // 2)]
    points += [(rng.randrange(w), rng.randrange(h)) for _ in range(15)]
    x = efficientnet_input(rgb)
    indices = [(c, rng.randrange(224), rng.randrange(224)) for c in range(3) for _ in range(6)]
    return {
        "width": w, "height": h,
        "pixels": [{"x": px, "y": py, "rgb": rgb[py, px].tolist()} for px, py in points],
        "channel_means": rgb.reshape(-1, 3).mean(axis=0).tolist(),
        "efficientnet_input": [{"c": c, "y": y, "x": xx, "value": float(x[0, c, y, xx])} for c, y, xx in indices],
        "efficientnet_input_channel_means": x.mean(dim=(0, 2, 3)).tolist(),
    }


def resize_cases():
    gen = torch.Generator().manual_seed(0)
    cases = []
    for (h, w), (oh, ow) in [((5, 7), (13, 11)), ((11, 13), (4, 6)), ((6, 10), (17, 3)), ((9, 9), (9, 9)),
                             ((32, 48), (24, 24))]:
        image = torch.randint(0, 256, (h, w, 3), generator=gen, dtype=torch.uint8)
        x = image.permute(2, 0, 1).unsqueeze(0).float()
        y = F.interpolate(x, size=(oh, ow), mode="bilinear", align_corners=False, antialias=False)
        cases.append({
            "width": w, "height": h, "pixels": image.flatten().tolist(),
            "out_width": ow, "out_height": oh, "out_hwc": y[0].permute(1, 2, 0).flatten().tolist(),
        })
    return cases


def tiny_jpegs():
    rng = np.random.default_rng(0)
    smooth = np.linspace(0, 255, 8)
    gray = Image.fromarray(((smooth[:, None] + smooth[None, :]) / 2).astype(np.uint8), "L")
    cmyk = Image.fromarray(rng.integers(0, 256, (8, 8, 4), dtype=np.uint8), "CMYK")
    out = {}
    for name, image in [("gray", gray), ("cmyk", cmyk)]:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=95)
        decoded = Image.open(io.BytesIO(buffer.getvalue()))
        assert decoded.mode == image.mode
        out[name] = {"jpeg_base64": base64.b64encode(buffer.getvalue()).decode(),
                     "rgb": np.asarray(decoded.convert("RGB")).flatten().tolist()}
    return out


fixtures = {
    "pillow": PIL.__version__,
    "libjpeg_turbo": features.version("libjpeg_turbo"),
    "torch": torch.__version__,
    "photos": {name: photo(name) for name in ["flower.jpg", "china.jpg"]},
    "resize": resize_cases(),
    "tiny_jpegs": tiny_jpegs(),
}
path = here / "image_fixtures.json"
path.write_text(json.dumps(fixtures, separators=(",", ":")))
print(f"wrote {path} ({path.stat().st_size} bytes; Pillow {fixtures['pillow']}, "
      f"libjpeg-turbo {fixtures['libjpeg_turbo']}, torch {torch.__version__})")
