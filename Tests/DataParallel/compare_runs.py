#!/usr/bin/env python3
"""Compares two Graft run directories: every tensor of last/model.safetensors (last/adapters.safetensors for a run with
adapters) within a relative tolerance (per tensor,
‖a − b‖ ≤ rtol·‖b‖, or bit for bit with --exact), and the validation figures of every metrics.jsonl line.
Exit status 0 when they agree; otherwise one line per difference on stderr and status 1. Standard library only."""
import argparse, array, json, math, os, struct, sys


def tensors(path):
    with open(path, "rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            sys.exit(f"{path}: tensor {name} is {info['dtype']}, expected F32")
        begin, end = info["data_offsets"]
        out[name] = (info["shape"], array.array("f", data[begin:end]), data[begin:end])
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--rtol", type=float, default=1e-5)
    p.add_argument("--exact", action="store_true", help="weights must be bit-identical")
    p.add_argument("--metrics-tol", type=float, default=None,
                   help="compare validation figures within this tolerance (relative for losses, absolute for accuracy "
                        "and F1) instead of requiring the same accuracy, F1 and best epochs")
    args = p.parse_args()
    problems = []
    def weights(run):
        adapters = f"{run}/last/adapters.safetensors"
        return tensors(adapters if os.path.exists(adapters) else f"{run}/last/model.safetensors")
    ta, tb = weights(args.a), weights(args.b)
    if sorted(ta) != sorted(tb):
        problems.append(f"tensor names differ: {sorted(set(ta) ^ set(tb))}")
    worst = 0.0
    for name in sorted(set(ta) & set(tb)):
        (sa, va, ra), (sb, vb, rb) = ta[name], tb[name]
        if sa != sb:
            problems.append(f"{name}: shape {sa} vs {sb}")
            continue
        if args.exact:
            if ra != rb:
                first = next(i for i in range(len(va)) if struct.pack("<f", va[i]) != struct.pack("<f", vb[i]))
                problems.append(f"{name}: not bit-identical (first at {first}: {va[first]!r} vs {vb[first]!r})")
            continue
        diff = math.sqrt(sum((x - y) ** 2 for x, y in zip(va, vb)))
        norm = math.sqrt(sum(y * y for y in vb))
        rel = diff / norm if norm > 0 else diff
        worst = max(worst, rel)
        if not rel <= args.rtol:
            problems.append(f"{name}: relative difference {rel:.3g} > {args.rtol:g}")
    # Meta-training runs keep no per-epoch metrics.
    def metrics(run):
        return [json.loads(l) for l in open(f"{run}/metrics.jsonl")] if os.path.exists(f"{run}/metrics.jsonl") else []
    ma, mb = metrics(args.a), metrics(args.b)
    if len(ma) != len(mb):
        problems.append(f"metrics.jsonl: {len(ma)} epochs vs {len(mb)}")
    tol = args.metrics_tol
    exact = ("epoch",) if tol is not None else ("accuracy", "macro_f1", "improved", "epoch")
    for x, y in zip(ma, mb):
        for key in exact:
            if x.get(key) != y.get(key):
                problems.append(f"metrics.jsonl epoch {x.get('epoch')}: {key} {x.get(key)} vs {y.get(key)}")
        close = [("loss", tol or 1e-4, 1e-6), ("train_loss", tol or 1e-4, 1e-6)]
        if tol is not None:
            close += [("accuracy", 0, tol), ("macro_f1", 0, tol)]
        for key, rel, absolute in close:
            if not math.isclose(x.get(key) or 0, y.get(key) or 0, rel_tol=rel, abs_tol=absolute):
                problems.append(f"metrics.jsonl epoch {x.get('epoch')}: {key} {x.get(key)} vs {y.get(key)}")
    for line in problems:
        print(f"compare_runs: {args.a} vs {args.b}: {line}", file=sys.stderr)
    if not problems:
        print(f"compare_runs: {args.a} and {args.b} agree ({len(ta)} tensors, worst relative difference "
              f"{'0 (bit-identical)' if args.exact else f'{worst:.2g}'}, {len(ma)} epochs of metrics)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
