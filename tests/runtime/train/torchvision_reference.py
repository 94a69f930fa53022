#!/usr/bin/python3
"""Reference outputs of a torchvision ResNet for tests/runtime/train/test_torchvision_parity.cpp.

    torchvision_reference.py ARCH CONFIG OUT_DIR

Builds torchvision.models.ARCH with random weights (seeded), randomises every batch norm's affine
parameters and running statistics so that they matter, converts its state_dict with
scripts/convert_torchvision.py for CONFIG into OUT_DIR/model.h5, and writes, as raw little-endian
files in OUT_DIR:
  inputs.f32   (2, 3, 224, 224)  the images
  labels.i32   (2)               their labels
  logits.f32   (2, 1000)         model.eval() output
  train_logits.f32 (2, 1000)     model.train() output (batch statistics)
  loss.f64     (1)               model.train() mean cross-entropy over the batch
  grads.f32    every parameter's gradient of that loss, concatenated in state_dict order
  grads.f64    the same gradients computed in float64 (the reference float32 results are measured against)
  grads.txt    one line per parameter: "<name> <number of values>"
"""

import copy
import os
import subprocess
import sys

import torch
import torch.nn.functional as F
import torchvision


def randomise_batch_norms(model, generator):
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                c = module.num_features
                module.weight.copy_(torch.rand(c, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(c, generator=generator) * 0.2)
                module.running_mean.copy_(torch.randn(c, generator=generator) * 0.2)
                module.running_var.copy_(torch.rand(c, generator=generator) + 0.5)
        model.fc.bias.copy_(torch.randn(model.fc.bias.shape, generator=generator) * 0.1)


def main():
    arch, config, out = sys.argv[1:4]
    torch.manual_seed(20240607)
    torch.set_num_threads(2)
    generator = torch.Generator().manual_seed(7)
    model = getattr(torchvision.models, arch)()
    randomise_batch_norms(model, generator)
    torch.save(model.state_dict(), os.path.join(out, "model.pth"))
    converter = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "scripts",
                             "convert_torchvision.py")
    subprocess.run([sys.executable, converter, os.path.join(out, "model.pth"), config, os.path.join(out, "model.h5")],
                   check=True)

    x = torch.randn(2, 3, 224, 224, generator=generator)
    labels = torch.tensor([3, 997], dtype=torch.int32)
    model.eval()
    with torch.no_grad():
        logits = model(x)
    model.train()
    model.zero_grad()
    train_logits = model(x)  # normalised with the batch's statistics
    loss = F.cross_entropy(train_logits, labels.long())  # mean over the batch
    loss.backward()
    exact = copy.deepcopy(model).double()  # the same step in float64: how exact float32 can be here
    exact.zero_grad()
    F.cross_entropy(exact(x.double()), labels.long()).backward()

    x.numpy().astype("<f4").tofile(os.path.join(out, "inputs.f32"))
    labels.numpy().astype("<i4").tofile(os.path.join(out, "labels.i32"))
    logits.numpy().astype("<f4").tofile(os.path.join(out, "logits.f32"))
    train_logits.detach().numpy().astype("<f4").tofile(os.path.join(out, "train_logits.f32"))
    torch.tensor([loss.item()], dtype=torch.float64).numpy().astype("<f8").tofile(os.path.join(out, "loss.f64"))
    names = [(name, p.grad.reshape(-1)) for name, p in model.named_parameters()]
    torch.cat([g for _, g in names]).numpy().astype("<f4").tofile(os.path.join(out, "grads.f32"))
    exact_grads = [p.grad.reshape(-1) for _, p in exact.named_parameters()]
    torch.cat(exact_grads).numpy().astype("<f8").tofile(os.path.join(out, "grads.f64"))
    with open(os.path.join(out, "grads.txt"), "w", encoding="utf-8") as f:
        for name, g in names:
            f.write(f"{name} {g.numel()}\n")


if __name__ == "__main__":
    main()
