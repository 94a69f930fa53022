#!/usr/bin/python3
"""Training throughput of the dptrain reference CNN in PyTorch eager mode, for side-by-side comparison.

Same model as configs/fashion_mnist.yaml: conv3x3(1->32,p1)-ReLU-maxpool2-conv3x3(32->64,p1)-ReLU-maxpool2-
dense(3136->128)-ReLU-dense(128->10), softmax cross-entropy, SGD with momentum, on synthetic 1x28x28 input.
Prints one JSON line: {"framework": "pytorch", "images_per_sec": ...}.
"""
import argparse
import json
import time

import torch
import torch.nn as nn


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--steps", type=int, default=50)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
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
    print(json.dumps({"framework": "pytorch", "version": torch.__version__, "batch": args.batch,
                      "threads": args.threads, "steps": args.steps,
                      "images_per_sec": args.batch * args.steps / dt}))


if __name__ == "__main__":
    main()
