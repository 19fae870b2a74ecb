"""Makes the fixtures of ImageDataTests.swift: small PNGs of every colour type with the pixels expected from them,
IDX files (good, gzip-compressed, truncated, lying header), and torchvision's output of each deterministic transform
on a fixed image. Run with a Python that has torch, torchvision and Pillow:

    .cache/images-venv/bin/python Tests/GraftDataTests/Fixtures/make_image_data_fixtures.py

(Made with torch 2.13.0+cpu, torchvision 0.28.0, Pillow 13.0.0, numpy 2.4.6.)
"""
import gzip, json, os, struct, sys, types, zlib

# torchvision's compiled operators need the torch build its wheel was made for; the functional transforms used here
# are plain torch code, so the registrations of those operators are skipped when they do not load.
sys.modules.setdefault("torchvision._meta_registrations", types.ModuleType("torchvision._meta_registrations"))

import numpy as np
import torch
import torchvision.transforms.functional as F
from PIL import Image
from torchvision.transforms import InterpolationMode

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "images")
os.makedirs(OUT, exist_ok=True)


def png(path, width, height, bit_depth, color_type, rows, palette=None, trns=None):
    """A PNG written chunk by chunk (PIL cannot write every colour type and depth)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes(r) for r in rows)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0))
    if palette is not None:
        data += chunk(b"PLTE", bytes(palette))
    if trns is not None:
        data += chunk(b"tRNS", bytes(trns))
    data += chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


rng = np.random.default_rng(7)
W, H = 5, 4
expected = {}


def samples(channels, depth):
    top = (1 << depth) - 1
    return rng.integers(0, top + 1, size=(H, W, channels))


def rows_of(values, depth):
    out = []
    for row in values:
        flat = row.reshape(-1)
        if depth == 16:
            out.append(b"".join(struct.pack(">H", int(v)) for v in flat))
        elif depth == 8:
            out.append(bytes(int(v) for v in flat))
        else:  # 1, 2 or 4 bits, packed from the high bits
            bits, byte, n = [], 0, 0
            for v in flat:
                byte = (byte << depth) | int(v)
                n += depth
                if n == 8:
                    bits.append(byte); byte, n = 0, 0
            if n:
                bits.append(byte << (8 - n))
            out.append(bytes(bits))
    return out


def high_byte(values, depth):
    return values >> 8 if depth == 16 else values


for name, color_type, channels, depth in [("grey8", 0, 1, 8), ("grey16", 0, 1, 16), ("grey1", 0, 1, 1),
                                          ("grey4", 0, 1, 4), ("grey_alpha8", 4, 2, 8), ("grey_alpha16", 4, 2, 16),
                                          ("rgb8", 2, 3, 8), ("rgb16", 2, 3, 16), ("rgba8", 6, 4, 8),
                                          ("rgba16", 6, 4, 16)]:
    v = samples(channels, depth)
    png(f"{OUT}/{name}.png", W, H, depth, color_type, rows_of(v, depth))
    colour = v[..., :3] if channels >= 3 else v[..., :1]
    if depth < 8:  # libpng scales low-depth grey up to 8 bits (1 → 255, 4 bits × 17)
        colour = colour * (255 // ((1 << depth) - 1))
    pixels = high_byte(colour, depth)
    expected[name] = {"channels": pixels.shape[-1], "pixels": pixels.reshape(-1).tolist()}

palette = rng.integers(0, 256, size=(6, 3))
indices = rng.integers(0, 6, size=(H, W, 1))
png(f"{OUT}/palette.png", W, H, 8, 3, rows_of(indices, 8), palette=palette.reshape(-1).tolist(), trns=[0, 128])
expected["palette"] = {"channels": 3, "pixels": palette[indices[..., 0]].reshape(-1).tolist()}

# PIL agrees on the 8-bit files it reads (its RGB conversion drops alpha, its palette lookup is the same).
for name in ["grey8", "rgb8", "rgba8", "palette", "grey_alpha8"]:
    image = Image.open(f"{OUT}/{name}.png")
    mode = "L" if expected[name]["channels"] == 1 else "RGB"
    assert np.asarray(image.convert(mode)).reshape(-1).tolist() == expected[name]["pixels"], name

with open(f"{OUT}/not_a_png.png", "wb") as f:
    f.write(b"GIF89a not really")
with open(f"{OUT}/rgb8.png", "rb") as f:
    whole = f.read()
with open(f"{OUT}/truncated.png", "wb") as f:
    f.write(whole[: len(whole) - 20])

# IDX: 3 images of 4 × 5 with labels 0, 1, 1; plain and gzipped; truncated; a header claiming far more.
images = rng.integers(0, 256, size=(3, 4, 5)).astype(np.uint8)
labels = np.array([0, 1, 1], dtype=np.uint8)
idx3 = struct.pack(">BBBBIII", 0, 0, 8, 3, 3, 4, 5) + images.tobytes()
idx1 = struct.pack(">BBBBI", 0, 0, 8, 1, 3) + labels.tobytes()
for name, data in [("good-images-idx3-ubyte", idx3), ("good-labels-idx1-ubyte", idx1)]:
    with open(f"{OUT}/{name}", "wb") as f:
        f.write(data)
    with open(f"{OUT}/{name}.gz", "wb") as f:
        f.write(gzip.compress(data, mtime=0))
with open(f"{OUT}/truncated-images-idx3-ubyte", "wb") as f:
    f.write(idx3[:-7])
with open(f"{OUT}/lying-images-idx3-ubyte", "wb") as f:
    f.write(struct.pack(">BBBBIII", 0, 0, 8, 3, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF) + images.tobytes())
with open(f"{OUT}/truncated-images-idx3-ubyte.gz", "wb") as f:
    f.write(gzip.compress(idx3, mtime=0)[:-12])
expected["idx"] = {"images": images.reshape(-1).tolist(), "labels": labels.tolist()}

# Transforms on a fixed 3 × 12 × 10 image of 0–255 values, through torchvision on [0, 1] floats.
image = torch.tensor(rng.integers(0, 256, size=(3, 12, 10)), dtype=torch.float32)
x = image / 255
nearest = InterpolationMode.NEAREST
cases = {
    "resize_7x5": F.resize(x, [7, 5], antialias=True),
    "resize_shorter_6": F.resize(x, 6, antialias=True),
    "resize_up_15x13": F.resize(x, [15, 13], antialias=True),
    "center_crop_5x4": F.center_crop(x, [5, 4]),
    "center_crop_7x7": F.center_crop(x, [7, 7]),
    "hflip": F.hflip(x),
    "affine": F.affine(x, angle=30.0, translate=[2, -1], scale=1.1, shear=[0.0, 0.0], interpolation=nearest),
    "affine_scale_only": F.affine(x, angle=0.0, translate=[0, 0], scale=0.8, shear=[0.0, 0.0], interpolation=nearest),
    "affine_shear": F.affine(x, angle=15.0, translate=[1, 0], scale=0.9, shear=[12.0, -8.0], interpolation=nearest),
    "rotate_20": F.rotate(x, 20.0, interpolation=nearest),
    "brightness_1.3": F.adjust_brightness(x, 1.3),
    "contrast_0.6": F.adjust_contrast(x, 0.6),
    "saturation_1.7": F.adjust_saturation(x, 1.7),
    "hue_0.2": F.adjust_hue(x, 0.2),
    "hue_-0.35": F.adjust_hue(x, -0.35),
    "grayscale_3": F.rgb_to_grayscale(x, num_output_channels=3),
    "normalize_imagenet": F.normalize(x, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
}
grey = image[:1]
cases["grey_contrast_0.6"] = F.adjust_contrast(grey / 255, 0.6)
transforms = {k: {"shape": list(v.shape), "values": (v * 255 if not k.startswith("normalize") else v).reshape(-1).tolist()}
              for k, v in cases.items()}
expected["transform_input"] = image.reshape(-1).tolist()
expected["transforms"] = transforms

with open(os.path.join(HERE, "image_data_fixtures.json"), "w") as f:
    json.dump(expected, f)
print("wrote", len(expected), "fixture groups and", len(os.listdir(OUT)), "files")
