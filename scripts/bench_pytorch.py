#!/usr/bin/python3
"""Training throughput of a dptrain config's model in PyTorch eager mode, for side-by-side comparison.

--model cnn: configs/fashion_mnist.yaml, conv3x3(1->32,p1)-ReLU-maxpool2-conv3x3(32->64,p1)-ReLU-maxpool2-
  dense(3136->128)-ReLU-dense(128->10); SGD lr 0.05, Nesterov momentum 0.9, weight decay 5e-4.
--model resnet20: configs/resnet20_fashion_mnist.yaml, conv3x3(1->16, no bias)-BN-ReLU, three stages of
  three basic blocks (16, 32, 64 channels; the first block of stages 2 and 3 has stride 2 and a
  1x1 conv + BN shortcut), global average pool, dense(64->10); SGD lr 0.1, Nesterov momentum 0.9,
  weight decay 5e-4 (not on biases and batch-norm parameters).
Both train with softmax cross-entropy on synthetic 1x28x28 input, as `dptrain bench train` does.
Prints one JSON line: {"framework": "pytorch", "model": ..., "images_per_sec": ...}.
"""
import argparse
import json
import pathlib
import sys
import time

import torch
import torch.nn as nn

# The models, layer for layer as dptrain's configs build them, are the GPU benchmark's.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests" / "gpu"))
from bench_torch import build_model  # noqa: E402


def optimizer(name, model):
    if name == "cnn":
        return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    # weight_decay_exclude: [bias, norm]
    decay, no_decay = [], []
    for pname, p in model.named_parameters():
        (no_decay if p.ndim == 1 else decay).append(p)
    return torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": no_decay, "weight_decay": 0.0}],
                           lr=0.1, momentum=0.9, nesterov=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", choices=["cnn", "resnet20"], default="cnn")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--steps", type=int, default=50)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model("resnet20" if args.model == "resnet20" else "fashion_mnist")
    model.train()
    opt = optimizer(args.model, model)
    loss_fn = nn.CrossEntropyLoss()
    x = torch.randn(args.batch, 1, 28, 28)
    y = torch.randint(0, 10, (args.batch,))

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    t0 = time.perf_counter()
    for _ in range(args.steps):
        step()
    dt = time.perf_counter() - t0
    print(json.dumps({"framework": "pytorch", "model": args.model, "version": torch.__version__,
                      "parameters": sum(p.numel() for p in model.parameters()), "batch": args.batch,
                      "threads": args.threads, "steps": args.steps,
                      "images_per_sec": args.batch * args.steps / dt}))


if __name__ == "__main__":
    main()
