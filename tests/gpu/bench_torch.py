#!/usr/bin/env python3
"""The PyTorch side of the GPU benchmark (tests/gpu/device_check.sh), and its summary table.

The models are the ones dptrain's benchmark trains, layer for layer:
  fashion_mnist  the demo CNN of configs/fashion_mnist.yaml (1x28x28, 10 classes)
  resnet20       configs/resnet20_fashion_mnist.yaml (1x28x28, 10 classes; 1x1 conv + BN shortcuts)
  resnet50       configs/resnet50_imagefolder.yaml = torchvision's resnet50 (3x224x224, 1000 classes)
Each is trained as the config trains it (SGD, momentum 0.9, the config's Nesterov flag and weight
decay; softmax cross-entropy), in eager mode with PyTorch's default NCHW layout and cuDNN heuristics
(no cudnn.benchmark, as dptrain does no timed algorithm search), on one fixed batch already on the
device. Precisions as dptrain's `precision` key means them:
  float32  no TF32 anywhere (PyTorch allows it in convolutions by default: switched off here)
  tf32     TF32 in convolutions and matrix products
  bf16     autocast to bfloat16 (convolutions and matrix products in bf16, float32 master weights),
           TF32 off for what stays float32

Usage:
  bench_torch.py params MODEL                      # the model's parameter count
  bench_torch.py bench --model M [--device cuda] [--batches 128,1024] [--precisions float32,tf32,bf16]
                 [--steps N[,N...]] [--warmup N] [--budget-seconds S]   # one JSON line per case
  bench_torch.py table RESULTS.jsonl [--min-ratio-128 1.3 --min-ratio-1024 1.0]
"""
import argparse
import json
import sys
import time

MODELS = {  # name: (sample shape, classes, dptrain config, nesterov, weight decay)
    "fashion_mnist": ((1, 28, 28), 10, "configs/fashion_mnist.yaml", True, 5e-4),
    "resnet20": ((1, 28, 28), 10, "configs/resnet20_fashion_mnist.yaml", True, 5e-4),
    "resnet50": ((3, 224, 224), 1000, "configs/resnet50_imagefolder.yaml", False, 1e-4),
}


def build_model(name):
    import torch.nn as nn

    if name == "fashion_mnist":
        return nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    if name == "resnet20":
        return ResNet20(nn)
    if name == "resnet50":
        import torchvision
        return torchvision.models.resnet50(weights=None, num_classes=1000)
    raise SystemExit(f"bench_torch: unknown model {name!r} (known: {', '.join(MODELS)})")


def ResNet20(nn):
    """conv3x3(16)-BN-ReLU, 3 stages of 3 basic blocks (16, 32, 64 channels), global average pool, dense(10)."""

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x):
            y = self.relu(self.bn1(self.conv1(x)))
            y = self.bn2(self.conv2(y))
            return self.relu(y + (self.downsample(x) if self.downsample is not None else x))

    layers = [nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        for i in range(3):
            layers.append(Block(cin, cout, stride if i == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def parameter_count(model):
    return sum(p.numel() for p in model.parameters())


def set_precision(torch, precision):
    """TF32 on or off in convolutions and matrix products, through whichever API this PyTorch has."""
    tf32 = precision == "tf32"
    matmul, conv = torch.backends.cuda.matmul, getattr(torch.backends.cudnn, "conv", None)
    if hasattr(matmul, "fp32_precision") and conv is not None and hasattr(conv, "fp32_precision"):
        try:  # PyTorch 2.9 and later; mixing it with the older flags is an error there
            matmul.fp32_precision = "tf32" if tf32 else "ieee"
            conv.fp32_precision = "tf32" if tf32 else "ieee"
            return {"matmul": matmul.fp32_precision, "conv": conv.fp32_precision}
        except (RuntimeError, ValueError) as e:
            print(f"bench_torch: fp32_precision not accepted ({e}); using allow_tf32", file=sys.stderr)
    matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    return {"matmul": "tf32" if matmul.allow_tf32 else "ieee", "conv": "tf32" if torch.backends.cudnn.allow_tf32 else "ieee"}


def bench_case(torch, name, device, batch, precision, steps, warmup):
    shape, classes, _, nesterov, weight_decay = MODELS[name]
    torch.manual_seed(0)
    settings = set_precision(torch, precision) if device == "cuda" else {"matmul": "ieee", "conv": "ieee"}
    model = build_model(name).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=nesterov, weight_decay=weight_decay)
    x = torch.randn(batch, *shape, device=device)
    y = torch.randint(0, classes, (batch,), device=device)
    autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=precision == "bf16")
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        with autocast:
            loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(warmup):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step()
    sync()
    seconds = time.perf_counter() - t0
    return {"framework": "pytorch", "version": torch.__version__, "model": name, "device": device,
            "precision": precision, "batch": batch, "steps": steps, "images_per_sec": batch * steps / seconds,
            "step_seconds": seconds / steps, "loss": float(loss), "tf32": settings,
            "params": parameter_count(model)}


def run_bench(args):
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_torch: no GPU visible to PyTorch (torch.cuda.is_available() is False)")
    start = time.monotonic()
    batches = [int(b) for b in args.batches.split(",")]
    steps = [int(n) for n in args.steps.split(",")]
    if len(steps) not in (1, len(batches)):
        raise SystemExit("bench_torch: --steps takes one count, or one per batch of --batches")
    for i, batch in enumerate(batches):
        for precision in args.precisions.split(","):
            if time.monotonic() - start > args.budget_seconds:
                print(json.dumps({"framework": "pytorch", "model": args.model, "batch": batch, "precision": precision,
                                  "error": "not run: time budget spent"}), flush=True)
                continue
            try:
                result = bench_case(torch, args.model, args.device, batch, precision, steps[i % len(steps)], args.warmup)
            except Exception as e:  # one failing case (e.g. out of memory) must not hide the others
                result = {"framework": "pytorch", "model": args.model, "batch": batch, "precision": precision,
                          "error": f"{type(e).__name__}: {e}"[:300]}
            print(json.dumps(result), flush=True)
            if args.device == "cuda":
                torch.cuda.empty_cache()


def read_results(path):
    """{(model, batch, precision): {framework: images/s or error text}}; dptrain's repeats give their median."""
    rates = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            r = json.loads(line)
            key = (r["model"], int(r["batch"]), r["precision"])
            entry = rates.setdefault(key, {}).setdefault(r["framework"], [])
            entry.append(r)
    table = {}
    for key, frameworks in rates.items():
        for framework, records in frameworks.items():
            measured = sorted((r for r in records if "images_per_sec" in r), key=lambda r: r["images_per_sec"])
            if measured:
                median = measured[len(measured) // 2]
                table.setdefault(key, {})[framework] = float(median["images_per_sec"])
                if median.get("train_seconds"):  # dptrain: the share of the step spent waiting for data
                    table[key]["data_wait"] = median.get("data_wait_seconds", 0.0) / median["train_seconds"]
            else:
                table.setdefault(key, {})[framework] = str(records[-1].get("error", "failed"))
    return table


def print_table(args):
    table = read_results(args.results)
    order = {name: i for i, name in enumerate(MODELS)}
    rows = [("model", "batch", "precision", "dptrain img/s", "data wait", "PyTorch img/s", "ratio", "target")]
    missed = 0
    for key in sorted(table, key=lambda k: (order.get(k[0], 99), k[1], ["float32", "tf32", "bf16"].index(k[2]))):
        model, batch, precision = key
        ours, theirs = table[key].get("dptrain", "not run"), table[key].get("pytorch", "not run")
        fmt = lambda v: f"{v:.0f}" if isinstance(v, float) else v[:40]
        target = ""
        if model in ("fashion_mnist", "resnet50") and batch in (128, 1024):
            target = f">= {args.min_ratio_128 if batch == 128 else args.min_ratio_1024:.1f}"
        ratio = ""
        if isinstance(ours, float) and isinstance(theirs, float) and theirs > 0:
            ratio = f"{ours / theirs:.2f}"
            if target and ours / theirs < float(target[3:]):
                ratio += " (below)"
                missed += 1
        elif target:
            missed += 1
        wait = f"{100 * table[key]['data_wait']:.0f}%" if "data_wait" in table[key] else ""
        rows.append((model, str(batch), precision, fmt(ours), wait, fmt(theirs), ratio, target))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    print(f"{len(rows) - 1} cases; {missed} with a target not met or not measured")
    return 1 if missed else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("params", help="print the model's parameter count")
    p.add_argument("model", choices=list(MODELS))
    b = sub.add_parser("bench", help="training images/s, one JSON line per (batch, precision)")
    b.add_argument("--model", required=True, choices=list(MODELS))
    b.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    b.add_argument("--batches", default="128,1024")
    b.add_argument("--precisions", default="float32,tf32,bf16")
    b.add_argument("--steps", default="20", help="timed steps: one count, or one per batch (e.g. 40,10)")
    b.add_argument("--warmup", type=int, default=5)
    b.add_argument("--budget-seconds", type=float, default=600, help="cases that would start later are reported as not run")
    t = sub.add_parser("table", help="the summary table of a JSON-lines file of both frameworks' results")
    t.add_argument("results")
    t.add_argument("--min-ratio-128", type=float, default=1.3)
    t.add_argument("--min-ratio-1024", type=float, default=1.0)
    args = ap.parse_args()
    if args.command == "params":
        print(parameter_count(build_model(args.model)))
    elif args.command == "bench":
        run_bench(args)
    else:
        sys.exit(print_table(args))


if __name__ == "__main__":
    main()
