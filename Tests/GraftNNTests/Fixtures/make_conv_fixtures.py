#!/usr/bin/env python3
"""Writes the reference values ZooTests compares Graft's ResNet and EfficientNet-Lite blocks with.

    .cache/torch-venv/bin/python Tests/GraftNNTests/Fixtures/make_conv_fixtures.py

Needs only torch. The reference modules are written out here in plain torch, with the key names of torchvision's
ResNet (v1.5: stride on the 3x3 conv of a bottleneck) and of lukemelas' EfficientNet (TensorFlow "SAME" padding
through F.pad), so the fixtures do not depend on either library being installed.

Each block fixture holds random float32 weights (BatchNorm running statistics too), an input, a probe, and for
eval and train mode: the output, the gradients of sum(output * probe) with respect to the input and every
parameter, and the buffers after the forward. References are computed in float64 from the float32 weights, so
they carry no float32 rounding of their own. `zoo_reference.json` lists the state-dict keys and shapes and the
parameter counts of whole ResNet-18/50 and EfficientNet-Lite0 models. When the converted EfficientNet-Lite0
checkpoint is found ($GRAFT_ASSETS or the repository's .cache/assets, under efficientnet/), `lite0_logits.json`
holds its logits for a synthetic 72 px image (`synthetic_image`; the Swift test builds the same one).
"""
import json
import math
import os
import struct

import numpy as np

import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


def conv3x3(i, o, stride=1):
    return nn.Conv2d(i, o, 3, stride, 1, bias=False)


def conv1x1(i, o, stride=1):
    return nn.Conv2d(i, o, 1, stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU()
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample(inplanes, planes * self.expansion, stride)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = downsample(inplanes, planes * self.expansion, stride)

    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


def downsample(inplanes, outplanes, stride):
    if stride == 1 and inplanes == outplanes:
        return None
    return nn.Sequential(conv1x1(inplanes, outplanes, stride), nn.BatchNorm2d(outplanes))


class ResNet(nn.Module):
    def __init__(self, block, layers, num_classes=1000):
        super().__init__()
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        for i, (planes, blocks) in enumerate(zip([64, 128, 256, 512], layers)):
            stride = 1 if i == 0 else 2
            members = []
            for b in range(blocks):
                members.append(block(self.inplanes, planes, stride if b == 0 else 1))
                self.inplanes = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*members))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)


class SameConv2d(nn.Conv2d):
    """A Conv2d with TensorFlow's "SAME" padding, the extra row or column going bottom or right."""

    def forward(self, x):
        pads = []
        for size, k, s, d in zip(x.shape[-2:], self.weight.shape[-2:], self.stride, self.dilation):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        x = F.pad(x, [pads[1][0], pads[1][1], pads[0][0], pads[0][1]])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def lite_bn(channels):
    return nn.BatchNorm2d(channels, momentum=0.01, eps=1e-3)


class MBConvBlock(nn.Module):
    """lukemelas' MBConvBlock as EfficientNet-Lite uses it: no squeeze-excitation, ReLU6."""

    def __init__(self, inp, out, kernel, stride, expand):
        super().__init__()
        hidden = inp * expand
        self.expand, self.skip = expand, stride == 1 and inp == out
        if expand != 1:
            self._expand_conv = SameConv2d(inp, hidden, 1, bias=False)
            self._bn0 = lite_bn(hidden)
        self._depthwise_conv = SameConv2d(hidden, hidden, kernel, stride, groups=hidden, bias=False)
        self._bn1 = lite_bn(hidden)
        self._project_conv = SameConv2d(hidden, out, 1, bias=False)
        self._bn2 = lite_bn(out)

    def forward(self, x):
        h = F.relu6(self._bn0(self._expand_conv(x))) if self.expand != 1 else x
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


LITE0_STAGES = [(1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
                (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320)]


class EfficientNetLite(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, 2, bias=False)
        self._bn0 = lite_bn(32)
        blocks = []
        for repeats, kernel, stride, expand, inp, out in LITE0_STAGES:
            for r in range(repeats):
                blocks.append(MBConvBlock(inp if r == 0 else out, out, kernel, stride if r == 0 else 1, expand))
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(320, 1280, 1, bias=False)
        self._bn1 = lite_bn(1280)
        self._avg_pooling = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(0.2)
        self._fc = nn.Linear(1280, num_classes)


def randomise(module, gen):
    """Weights on a scale that keeps activations near 1, and BatchNorm statistics away from their defaults."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.weight[0].numel()
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * math.sqrt(2 / fan_in))
            elif isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(1 + 0.3 * torch.randn(c, generator=gen))
                m.bias.copy_(0.2 * torch.randn(c, generator=gen))
                m.running_mean.copy_(0.3 * torch.randn(c, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(c, generator=gen))
                m.num_batches_tracked.fill_(3)


def encode(t):
    """A tensor as JSON: its shape and its values, row-major, with float32 precision (9 significant digits)."""
    flat = t.detach().double().reshape(-1).tolist()
    return {"shape": list(t.shape), "data": [float(f"{v:.9g}") for v in flat]}


def block_fixture(name, config, block, input_shape, seed):
    gen = torch.Generator().manual_seed(seed)
    randomise(block, gen)
    state = {k: v.clone() for k, v in block.state_dict().items()}
    x = torch.randn(input_shape, generator=gen)
    block = block.double()
    with torch.no_grad():
        block.eval()
        probe = torch.randn(block(x.double()).shape, generator=gen)
    cases = {}
    for mode in ["eval", "train"]:
        block.load_state_dict(state)
        block.train(mode == "train")
        xd = x.double().requires_grad_(True)
        out = block(xd)
        names, params = zip(*block.named_parameters())
        grads = torch.autograd.grad((out * probe.double()).sum(), [xd, *params])
        cases[mode] = {
            "output": encode(out),
            "input_grad": encode(grads[0]),
            "grads": {n: encode(g) for n, g in zip(names, grads[1:])},
            "buffers_after": {n: encode(b) for n, b in block.named_buffers()},
        }
    fixture = {"config": config, "weights": {k: encode(v) for k, v in state.items()}, "input": encode(x),
               "probe": encode(probe), "cases": cases}
    path = os.path.join(HERE, f"{name}.json")
    with open(path, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
    print(f"{path}: {os.path.getsize(path)} bytes")


def model_reference(model):
    state = model.state_dict()
    return {"keys": [[k, list(v.shape)] for k, v in state.items()],
            "parameters": sum(p.numel() for p in model.parameters())}


def read_safetensors(path):
    """A safetensors file as a state dict, read with numpy alone (F32 and I64 are all the converter writes)."""
    with open(path, "rb") as f:
        raw = f.read()
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + size])
    dtypes = {"F32": np.float32, "I64": np.int64}
    state = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        start, end = (8 + size + o for o in entry["data_offsets"])
        values = np.frombuffer(raw[start:end], dtype=dtypes[entry["dtype"]]).reshape(entry["shape"])
        state[name] = torch.from_numpy(values.copy())
    return state


def synthetic_image(side=72):
    """x[c, i, j] = sin(0.3 i (c + 1)) cos(0.2 j) + 0.1 c, in float64 then rounded to float32."""
    c, i, j = np.meshgrid(np.arange(3.0), np.arange(float(side)), np.arange(float(side)), indexing="ij")
    return torch.from_numpy((np.sin(0.3 * i * (c + 1)) * np.cos(0.2 * j) + 0.1 * c).astype(np.float32))[None]


def lite0_logits_fixture():
    root = os.environ.get("GRAFT_ASSETS") or os.path.join(HERE, "..", "..", "..", ".cache", "assets")
    path = os.path.join(root, "efficientnet", "efficientnet-lite0.safetensors")
    if not os.path.exists(path):
        print(f"{path} not found: lite0_logits.json left as it is")
        return
    model = EfficientNetLite()
    model.load_state_dict(read_safetensors(path))
    model = model.double().eval()
    with torch.no_grad():
        x = synthetic_image().double()
        h = F.relu6(model._bn0(model._conv_stem(x)))
        for block in model._blocks:
            h = block(h)
        logits = model._fc(model._avg_pooling(F.relu6(model._bn1(model._conv_head(h)))).flatten(1))
    out = os.path.join(HERE, "lite0_logits.json")
    with open(out, "w") as f:
        json.dump({"side": 72, "logits": encode(logits)}, f, separators=(",", ":"))
    print(f"{out}: {os.path.getsize(out)} bytes, top-5 {logits[0].topk(5).indices.tolist()}")


def main():
    torch.manual_seed(0)
    block_fixture("resnet_basic_block", {"in": 8, "planes": 16, "stride": 2}, BasicBlock(8, 16, 2), [2, 8, 8, 8], 1)
    block_fixture("resnet_bottleneck", {"in": 16, "planes": 8, "stride": 2}, Bottleneck(16, 8, 2), [2, 16, 8, 8], 2)
    block_fixture("mbconv_e6_k5_s2", {"in": 8, "out": 16, "kernel": 5, "stride": 2, "expand": 6},
                  MBConvBlock(8, 16, 5, 2, 6), [2, 8, 8, 8], 3)
    block_fixture("mbconv_e1_k3_s1", {"in": 8, "out": 8, "kernel": 3, "stride": 1, "expand": 1},
                  MBConvBlock(8, 8, 3, 1, 1), [2, 8, 7, 7], 4)
    models = {"resnet18": ResNet(BasicBlock, [2, 2, 2, 2]), "resnet50": ResNet(Bottleneck, [3, 4, 6, 3]),
              "efficientnet_lite0": EfficientNetLite()}
    reference = {name: model_reference(m) for name, m in models.items()}
    for name, r in reference.items():
        print(f"{name}: {len(r['keys'])} state-dict entries, {r['parameters']:,} parameters")
    path = os.path.join(HERE, "zoo_reference.json")
    with open(path, "w") as f:
        json.dump(reference, f, separators=(",", ":"))
    print(f"{path}: {os.path.getsize(path)} bytes")
    lite0_logits_fixture()


if __name__ == "__main__":
    main()
