"""PyTorch side of `graft bench compare`: the same workloads as Sources/graft/BenchWorkloads.swift (same shapes,
batch, optimizer, train/eval modes and frozen parts; random weights, since speed does not depend on the values), timed
on request so that Graft and PyTorch rounds can be interleaved.

It reads commands from stdin, one a line, and answers each on stdout with one line:

    prepare KEY SECONDS   builds workload KEY, calls it twice (warm-up), then picks the calls per round (a power of
                          two) that make a round last at least SECONDS  ->  READY KEY CALLS
    time KEY              one timed round of CALLS calls                 ->  TIME KEY <seconds per call>
    release KEY           drops the workload                             ->  RELEASED KEY

An unknown key or command is answered `ERROR <message>`. Usage: bench_compare_torch.py --threads T
"""

import argparse
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as error:
    sys.exit(f"bench_compare_torch.py: cannot import torch ({error}); run launch/torch-env.sh and use its python")


def sgd_step(model, parameters, lr, loss):
    """One step: gradients cleared, loss backward, plain SGD (no momentum), as Graft's SGD."""
    optimizer = torch.optim.SGD(parameters, lr=lr)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss().backward()
        optimizer.step()

    return step


def freeze(model, trainable):
    """Freezes every parameter whose name starts with none of `trainable`; frozen batch norm goes to eval mode."""
    model.train()
    for name, p in model.named_parameters():
        p.requires_grad_(any(name.startswith(prefix) for prefix in trainable))
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d) and not any(p.requires_grad for p in m.parameters()):
            m.eval()
    return [p for p in model.parameters() if p.requires_grad]


# ---- the models, as Graft's zoo builds them ----

class BasicBlock(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + (x if self.downsample is None else self.downsample(x)))


class ResNet18(nn.Module):
    """ResNet-18 with Graft's small-image stem (3×3 stride-1 conv1, no max-pool) or ImageNet's (7×7 stride 2, then
    a 3×3 stride-2 max-pool)."""

    def __init__(self, classes, small_image_stem=True):
        super().__init__()
        if small_image_stem:
            self.conv1, self.maxpool = nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.Identity()
        else:
            self.conv1, self.maxpool = nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.MaxPool2d(3, 2, 1)
        self.bn1 = nn.BatchNorm2d(64)
        layers, cin = [], 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers.append(nn.Sequential(BasicBlock(cin, planes, stride), BasicBlock(planes, planes, 1)))
            cin = planes
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.fc = nn.Linear(512, classes)

    def forward(self, x):
        h = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        h = self.layer4(self.layer3(self.layer2(self.layer1(h))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))


def lite_bn(channels):
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class MBConv(nn.Module):
    def __init__(self, cin, cout, kernel, stride, expand):
        super().__init__()
        hidden = cin * expand
        self.expand = None
        if expand != 1:
            self.expand = nn.Sequential(nn.Conv2d(cin, hidden, 1, bias=False), lite_bn(hidden), nn.ReLU6())
        # Symmetric padding k//2 gives the output size of TensorFlow "SAME" at these even sizes.
        self.depthwise = nn.Sequential(nn.Conv2d(hidden, hidden, kernel, stride, kernel // 2, groups=hidden, bias=False),
                                       lite_bn(hidden), nn.ReLU6())
        self.project = nn.Sequential(nn.Conv2d(hidden, cout, 1, bias=False), lite_bn(cout))
        self.skip = stride == 1 and cin == cout

    def forward(self, x):
        h = x if self.expand is None else self.expand(x)
        h = self.project(self.depthwise(h))
        return h + x if self.skip else h


class EfficientNetLite0(nn.Module):
    STAGES = ((1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
              (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320))

    def __init__(self, classes):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), lite_bn(32), nn.ReLU6())
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in self.STAGES:
            for r in range(repeats):
                blocks.append(MBConv(cin if r == 0 else cout, cout, kernel, stride if r == 0 else 1, expand))
        self.blocks = nn.Sequential(*blocks)
        self.top = nn.Sequential(nn.Conv2d(320, 1280, 1, bias=False), lite_bn(1280), nn.ReLU6())
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(1280, classes)

    def forward(self, x):
        h = self.top(self.blocks(self.stem(x)))
        return self.fc(self.dropout(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1)))


class MiniLMClassifier(nn.Module):
    """MiniLM-L6's shape (hidden 384, 6 layers, 12 heads, 1536) as Hugging Face's BertModel, pooler, dropout,
    Linear: BertForSequenceClassification's layout, which Graft's BertClassifier mirrors."""

    def __init__(self, classes):
        super().__init__()
        from transformers import BertConfig, BertModel
        config = BertConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536)
        self.bert = BertModel(config, add_pooling_layer=True)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(384, classes)

    def forward(self, ids, mask):
        return self.classifier(self.dropout(self.bert(input_ids=ids, attention_mask=mask).pooler_output))


# ---- the workloads (keys match BenchWorkloads.swift) ----

def sgemm():
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)

    def call():
        with torch.inference_mode():
            torch.mm(a, b)
    return call


def mlp():
    model = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))
    x, labels = torch.rand(128, 784), torch.randint(0, 10, (128,))
    return sgd_step(model, model.parameters(), 0.01, lambda: F.cross_entropy(model(x), labels))


def minilm_inputs(batch, tokens):
    return torch.randint(1000, 21000, (batch, tokens)), torch.ones(batch, tokens, dtype=torch.long)


def minilm_forward():
    model = MiniLMClassifier(5).eval()
    ids, mask = minilm_inputs(16, 128)

    def call():
        with torch.inference_mode():
            model.bert(input_ids=ids, attention_mask=mask)
    return call


def minilm_step(trainable, bf16=False):
    model = MiniLMClassifier(5)
    ids, mask = minilm_inputs(16, 64)
    labels = torch.randint(0, 5, (16,))
    parameters = freeze(model, trainable)
    if not bf16:
        return sgd_step(model, parameters, 1e-4, lambda: F.cross_entropy(model(ids, mask), labels))

    def loss():
        # Autocast: matrix products in bfloat16, fp32 weights, gradients and optimizer (Graft's bf16 mode).
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(ids, mask)
        return F.cross_entropy(logits.float(), labels)
    return sgd_step(model, parameters, 1e-4, loss)


class LoRALinear(nn.Module):
    """A frozen Linear plus (alpha/r)·B(A x), A [r, in] and B [out, r] (B at zero): a LoRA adapter without dropout,
    as Graft's LoRALinear and PEFT's default."""

    def __init__(self, base, r=8, alpha=8):
        super().__init__()
        self.base = base
        self.lora_A = nn.Linear(base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        nn.init.zeros_(self.lora_B.weight)
        self.scaling = alpha / r

    def forward(self, x):
        return self.base(x) + self.scaling * self.lora_B(self.lora_A(x))


def minilm_lora_step():
    model = MiniLMClassifier(5)
    for layer in model.bert.encoder.layer:
        layer.attention.self.query = LoRALinear(layer.attention.self.query)
        layer.attention.self.value = LoRALinear(layer.attention.self.value)
    ids, mask = minilm_inputs(16, 64)
    labels = torch.randint(0, 5, (16,))
    model.train()
    for name, p in model.named_parameters():
        p.requires_grad_(".lora_" in name or name.startswith("classifier."))
    parameters = [p for p in model.parameters() if p.requires_grad]
    return sgd_step(model, parameters, 1e-4, lambda: F.cross_entropy(model(ids, mask), labels))


def resnet_step(trainable, small_image_stem=True):
    model = ResNet18(10, small_image_stem)
    x, labels = torch.randn(64, 3, 32, 32), torch.randint(0, 10, (64,))
    parameters = freeze(model, trainable)
    return sgd_step(model, parameters, 1e-4, lambda: F.cross_entropy(model(x), labels))


def effnet_forward():
    model = EfficientNetLite0(1000).eval()
    x = torch.randn(16, 3, 224, 224)

    def call():
        with torch.inference_mode():
            model(x)
    return call


def effnet_step():
    model = EfficientNetLite0(10)
    x, labels = torch.randn(16, 3, 224, 224), torch.randint(0, 10, (16,))
    parameters = freeze(model, [""])
    return sgd_step(model, parameters, 1e-4, lambda: F.cross_entropy(model(x), labels))


WORKLOADS = {
    "sgemm": sgemm,
    "sgemm_openblas": sgemm,
    "mlp": mlp,
    "minilm_fwd": minilm_forward,
    "minilm_full": lambda: minilm_step([""]),
    "minilm_lora": minilm_lora_step,
    "minilm_head": lambda: minilm_step(["classifier."]),
    "minilm_full_bf16": lambda: minilm_step([""], bf16=True),
    "minilm_top2": lambda: minilm_step(["bert.encoder.layer.4.", "bert.encoder.layer.5.", "bert.pooler.", "classifier."]),
    "resnet_full": lambda: resnet_step([""]),
    "resnet_head": lambda: resnet_step(["fc."]),
    "resnet_in_head": lambda: resnet_step(["fc."], small_image_stem=False),
    "effnet_fwd": effnet_forward,
    "effnet_full": effnet_step,
}


def round_seconds(call, calls):
    start = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - start) / calls


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, required=True, help="intra-op threads (torch.set_num_threads)")
    args = parser.parse_args()
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads", file=sys.stderr, flush=True)

    prepared = {}
    for line in sys.stdin:
        words = line.split()
        try:
            if len(words) == 3 and words[0] == "prepare" and words[1] in WORKLOADS:
                call = WORKLOADS[words[1]]()
                call()
                once = round_seconds(call, 1)
                calls = 1
                while calls * once < float(words[2]):
                    calls *= 2
                prepared[words[1]] = (call, calls)
                answer = f"READY {words[1]} {calls}"
            elif len(words) == 2 and words[0] == "time" and words[1] in prepared:
                call, calls = prepared[words[1]]
                answer = f"TIME {words[1]} {round_seconds(call, calls):.9f}"
            elif len(words) == 2 and words[0] == "release":
                prepared.pop(words[1], None)
                answer = f"RELEASED {words[1]}"
            else:
                answer = f"ERROR unknown command or workload: {line.strip()}"
        except Exception as error:  # reported to Graft, which prints it and goes on without this figure
            answer = f"ERROR {words[1] if len(words) > 1 else '?'}: {type(error).__name__}: {error}"
        print(answer, flush=True)


if __name__ == "__main__":
    main()
