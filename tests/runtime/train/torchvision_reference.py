#!/usr/bin/python3
"""Reference outputs of a torchvision ResNet for tests/runtime/train/test_torchvision_parity.cpp.

    torchvision_reference.py ARCH CONFIG OUT_DIR
    torchvision_reference.py ARCH --masked OUT_DIR

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

A ReLU's gradient jumps where its input is zero, and a float32 computation may land on either side of
an input within its rounding error of zero: in a deep layer with a few dozen values per channel one
such input moves whole gradient tensors by percents. So the second form takes the ReLU decisions of
the float32 run under test, OUT_DIR/relu_masks.u8 (one byte per ReLU input, 1 where the input passed,
the ReLUs in the order the forward pass calls them; relu_masks.txt: "<name> <number of values>" each),
and writes:
  grads_masked.f64  the float64 gradients of the same step taken with those decisions
  relu_flips.txt    per ReLU: "<name> <decisions unlike float64's> <largest |input| among them,
                    relative to the largest |input| of that ReLU>"
"""

import copy
import os
import subprocess
import sys

import numpy
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


class ReluDecisions:
    """The ReLU decisions of another run, handed out in call order, and how they differ from float64's."""

    def __init__(self, out):
        with open(os.path.join(out, "relu_masks.txt"), encoding="utf-8") as f:
            entries = [(name, int(count)) for name, count in (line.split() for line in f if line.strip())]
        flat = torch.from_numpy(numpy.fromfile(os.path.join(out, "relu_masks.u8"), dtype=numpy.uint8))
        if flat.numel() != sum(count for _, count in entries):
            sys.exit(f"relu_masks.u8 holds {flat.numel()} values, relu_masks.txt lists {sum(c for _, c in entries)}")
        self.masks = []
        for name, count in entries:
            self.masks.append((name, flat[:count]))
            flat = flat[count:]
        self.flips = []

    def take(self, v):
        if len(self.flips) == len(self.masks):
            sys.exit(f"the model calls more ReLUs than the {len(self.masks)} in relu_masks.txt")
        name, mask = self.masks[len(self.flips)]
        if mask.numel() != v.numel():
            sys.exit(f"ReLU {name}: relu_masks.txt has {mask.numel()} values, the model's input has {v.numel()}")
        mask = mask.reshape(v.shape).to(v.dtype)
        differ = (v > 0) != (mask > 0)
        margin = (v.abs()[differ].max() / v.abs().max()).item() if differ.any() else 0.0
        self.flips.append((name, int(differ.sum().item()), margin))
        return mask


class DecidedReLU(torch.nn.Module):
    """max(v, 0) in value, with the gradient passing where the other run's ReLU passed."""

    def __init__(self, decisions):
        super().__init__()
        self.decisions = decisions

    def forward(self, v):
        passed = v * self.decisions.take(v)
        return torch.relu(v).detach() + (passed - passed.detach())


def masked_gradients(arch, out):
    model = getattr(torchvision.models, arch)()
    model.load_state_dict(torch.load(os.path.join(out, "model.pth")))
    decisions = ReluDecisions(out)
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, torch.nn.ReLU):
                setattr(module, child_name, DecidedReLU(decisions))
    x = torch.from_numpy(numpy.fromfile(os.path.join(out, "inputs.f32"), dtype="<f4")).reshape(-1, 3, 224, 224)
    labels = torch.from_numpy(numpy.fromfile(os.path.join(out, "labels.i32"), dtype="<i4")).long()
    model = model.double().train()
    F.cross_entropy(model(x.double()), labels).backward()
    if len(decisions.flips) != len(decisions.masks):
        sys.exit(f"the model calls {len(decisions.flips)} ReLUs, relu_masks.txt lists {len(decisions.masks)}")
    torch.cat([p.grad.reshape(-1) for p in model.parameters()]).numpy().astype("<f8").tofile(
        os.path.join(out, "grads_masked.f64"))
    with open(os.path.join(out, "relu_flips.txt"), "w", encoding="utf-8") as f:
        for name, count, margin in decisions.flips:
            f.write(f"{name} {count} {margin:.6g}\n")


def main():
    if sys.argv[2] == "--masked":
        torch.set_num_threads(2)
        masked_gradients(sys.argv[1], sys.argv[3])
        return
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
