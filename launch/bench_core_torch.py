"""PyTorch (CPU) figures for the workloads of Graft's core benchmark, so `graft bench core` can print side-by-side
ratios: it runs this script with the venv from launch/torch-env.sh and parses lines of the exact form

    RESULT <key> <value>

from stdout (anything on stderr is for people). Keys and units, matching Sources/graft/Bench.swift:

    matmul_256 .. matmul_2048   GF/s    float32 N×N @ N×N, 2·N³ flops
    conv_fwdbwd                 GF/s    conv2d x[32,64,32,32] * w[64,64,3,3], padding 1, no bias; forward plus
                                        input and weight gradients = 3 × 2·32·64·64·9·32·32 flops
    add_gbs, exp_gbs, relu_gbs  GB/s    a + b (3·4·n bytes), exp(a) and relu(a) (2·4·n bytes), n = 2^22 float32
    mlp_steps                   steps/s MLP 784-512-512-10 (Linear + ReLU), batch 128, cross-entropy, backward,
                                        torch.optim.SGD(lr=0.01) step

Each figure is timed like Graft's own: one warm-up call, calls per round doubled until a round takes over 50 ms,
then rounds until at least five and the time budget are done; the median seconds per call is reported.
Forward-only figures run under torch.inference_mode(). Usage: bench_core_torch.py [--threads T] [--seconds S]
"""

import argparse
import os
import statistics
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except ImportError as error:
    sys.exit(f"bench_core_torch.py: cannot import torch ({error}); run launch/torch-env.sh and use its python")


def seconds_per_call(body, minimum):
    """Median seconds per call of `body` over timed rounds after a warm-up."""
    body()
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            body()
        if time.perf_counter() - start > 0.05:
            break
        calls *= 2
    rounds = []
    begin = time.perf_counter()
    while len(rounds) < 5 or time.perf_counter() - begin < minimum:
        start = time.perf_counter()
        for _ in range(calls):
            body()
        rounds.append((time.perf_counter() - start) / calls)
    return statistics.median(rounds)


def busy_cpu_seconds():
    """CPU seconds spent by the whole machine (non-idle, including steal) and by this process, or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    idle, iowait = fields[3], fields[4]
    own = os.times()
    return (sum(fields[:8]) - idle - iowait) / os.sysconf("SC_CLK_TCK"), own.user + own.system


def report(key, value):
    print(f"RESULT {key} {value:.3f}", flush=True)


def matmul(seconds):
    for n in (256, 512, 1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        with torch.inference_mode():
            t = seconds_per_call(lambda: torch.mm(a, b), seconds)
        report(f"matmul_{n}", 2 * n**3 / t / 1e9)


def conv(seconds):
    batch, channels, size, kernel = 32, 64, 32, 3
    x = torch.randn(batch, channels, size, size, requires_grad=True)
    w = torch.randn(channels, channels, kernel, kernel, requires_grad=True)
    upstream = torch.randn(batch, channels, size, size)

    def step():
        y = F.conv2d(x, w, padding=1)
        torch.autograd.grad(y, (x, w), upstream)

    flops = 3 * 2 * batch * channels * channels * kernel * kernel * size * size
    report("conv_fwdbwd", flops / seconds_per_call(step, seconds) / 1e9)


def elementwise(seconds):
    n = 1 << 22
    a, b = torch.randn(n), torch.randn(n)
    bytes_per_tensor = 4 * n
    with torch.inference_mode():
        report("add_gbs", 3 * bytes_per_tensor / seconds_per_call(lambda: torch.add(a, b), seconds) / 1e9)
        report("exp_gbs", 2 * bytes_per_tensor / seconds_per_call(lambda: torch.exp(a), seconds) / 1e9)
        report("relu_gbs", 2 * bytes_per_tensor / seconds_per_call(lambda: torch.relu(a), seconds) / 1e9)


def mlp(seconds):
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 512), torch.nn.ReLU(),
        torch.nn.Linear(512, 512), torch.nn.ReLU(),
        torch.nn.Linear(512, 10),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.rand(128, 784)
    labels = torch.randint(0, 10, (128,))

    def step():
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), labels).backward()
        optimizer.step()

    for _ in range(20):
        step()
    report("mlp_steps", 1 / seconds_per_call(step, max(seconds, 1.0)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2, help="intra-op threads (torch.set_num_threads)")
    parser.add_argument("--seconds", type=float, default=0.5, help="time budget per figure (MLP: at least 1 s)")
    args = parser.parse_args()
    if args.threads < 1 or args.seconds <= 0:
        parser.error("--threads must be at least 1 and --seconds positive")

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads", file=sys.stderr)
    before, start = busy_cpu_seconds(), time.perf_counter()
    matmul(args.seconds)
    conv(args.seconds)
    elementwise(args.seconds)
    mlp(args.seconds)
    after, wall = busy_cpu_seconds(), time.perf_counter() - start
    # Threads that share a core with another busy process wait at every barrier, so figures can drop 10-100x.
    if before and after:
        others = (after[0] - before[0]) - (after[1] - before[1])
        if others > 0.1 * wall:
            print(f"warning: other processes used {others:.1f} CPU-seconds during this {wall:.1f} s run; "
                  "the figures above are likely low", file=sys.stderr)


if __name__ == "__main__":
    main()
