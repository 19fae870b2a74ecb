"""PyTorch + Hugging Face side of `graft bench minilm`: MiniLM-L6 forward throughput on the same weights, batch
and thread count, printed as `RESULT minilm_tokens_per_s <value>` (parsed by Graft).

Usage: bench_minilm_torch.py --model DIR [--batch 16] [--tokens 128] [--threads 2]
"""
import argparse
import statistics
import sys
import time

try:
    import torch
    from safetensors.torch import load_file
    from transformers import BertConfig, BertModel
except ImportError as error:
    sys.exit(f"bench_minilm_torch.py: {error}; run launch/torch-env.sh and use its python")

parser = argparse.ArgumentParser()
parser.add_argument("--model", required=True)
parser.add_argument("--batch", type=int, default=16)
parser.add_argument("--tokens", type=int, default=128)
parser.add_argument("--threads", type=int, default=2)
args = parser.parse_args()
torch.set_num_threads(args.threads)

model = BertModel(BertConfig.from_json_file(f"{args.model}/config.json"), add_pooling_layer=True).eval()
missing, unexpected = model.load_state_dict(load_file(f"{args.model}/model.safetensors"), strict=False)
if missing:
    sys.exit(f"bench_minilm_torch.py: weights lack {missing}")
generator = torch.Generator().manual_seed(0)
ids = torch.randint(1000, 21000, (args.batch, args.tokens), generator=generator)
mask = torch.ones_like(ids)

with torch.inference_mode():
    for _ in range(2):
        model(input_ids=ids, attention_mask=mask)
    times = []
    start = time.perf_counter()
    while len(times) < 5 or time.perf_counter() - start < 3:
        t = time.perf_counter()
        model(input_ids=ids, attention_mask=mask)
        times.append(time.perf_counter() - t)
print(f"torch {torch.__version__}, {args.threads} threads, attention {model.config._attn_implementation}", file=sys.stderr)
print(f"RESULT minilm_tokens_per_s {args.batch * args.tokens / statistics.median(times):.1f}")
