#!/usr/bin/python3
"""Converts a torchvision model's state_dict into a dptrain checkpoint for the config it matches.

    scripts/convert_torchvision.py resnet18.pth configs/resnet18_imagefolder.yaml resnet18.h5
    dptrain eval configs/resnet18_imagefolder.yaml --checkpoint resnet18.h5 --set data.dir=...

`resnet18.pth` is what torch.save(model.state_dict(), "resnet18.pth") writes (a file holding
{"state_dict": ...} or keys prefixed "module." by DataParallel work too). Keys map 1:1 to dptrain
names, which the zoo configs choose as torchvision does: "layer1.0.conv1.weight" is the dptrain
parameter layer1.0.conv1.weight. Batch-norm running_mean and running_var go to /buffers,
num_batches_tracked is dropped, every other tensor goes to /parameters, in the state_dict's order
(torchvision registers modules in the order the zoo configs list them). Tensor layouts agree:
conv2d weights are (out, in / groups, kh, kw) and dense weights (units, inputs) in both.

The file is laid out as runtime/checkpoint/checkpoint.h describes (format_version 2): HDF5 1.10
format, fixed-length null-padded UTF-8 strings, chunked Fletcher-32 datasets, groups that track
creation order, the config's text in /config, and an "sgd" optimizer with no state at step 0. It is
a starting point, not a training position: load it with `dptrain eval --checkpoint` or with the
config's `init: {from: FILE}` (docs/models.md), not with --resume.
Needs torch and h5py (Debian: python3-torchvision python3-h5py).
"""

import argparse
import os
import re
import sys

import h5py
import numpy as np

FORMAT = "dptrain-checkpoint"
FORMAT_VERSION = 2
CHUNK_VALUES = (1 << 20) // 4  # at most 1 MiB of float32 per chunk, as dptrain writes
BUFFER_SUFFIXES = (".running_mean", ".running_var")
SKIPPED_SUFFIXES = (".num_batches_tracked",)


def dptrain_version():
    """The project version in the CMakeLists.txt beside this script, e.g. "0.1.0"."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "CMakeLists.txt")
    try:
        with open(path, encoding="utf-8") as f:
            match = re.search(r"project\(dptrain VERSION ([0-9.]+)", f.read())
        return match.group(1) if match else "unknown"
    except OSError:
        return "unknown"


def load_state_dict(path):
    """The named tensors of a saved state_dict, as float32 numpy arrays, in their order."""
    import torch  # imported here so that --help works without torch

    state = torch.load(path, map_location="cpu")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        sys.exit(f"convert_torchvision: {path} holds a {type(state).__name__}, not a state_dict; "
                 "save one with torch.save(model.state_dict(), PATH)")
    tensors = []
    for key, value in state.items():
        name = key[len("module."):] if key.startswith("module.") else key
        if not hasattr(value, "detach"):
            sys.exit(f"convert_torchvision: {path}: entry '{key}' is not a tensor")
        tensors.append((name, value.detach().to(torch.float32).cpu().numpy()))
    return tensors


def chunk_dims(shape):
    """Whole trailing dimensions and as many leading rows as fit in CHUNK_VALUES (write.cpp's rule)."""
    chunk = list(shape)
    inner = int(np.prod(shape))
    for i, n in enumerate(shape):
        inner //= n
        if inner <= CHUNK_VALUES:
            chunk[i] = min(max(CHUNK_VALUES // inner, 1), n)
            break
        chunk[i] = 1
    return tuple(chunk)


def fixed_string(text):
    """A numpy scalar of HDF5 type fixed-length, null-padded UTF-8 string ("" is stored as one NUL)."""
    data = text.encode("utf-8") or b"\0"
    return np.array(data, dtype=h5py.string_dtype("utf-8", len(data)))


def write_text(group, name, text):
    """A one-element fixed-length string dataset, chunked and checksummed."""
    value = fixed_string(text)
    group.create_dataset(name, shape=(1,), dtype=value.dtype, data=value.reshape(1), chunks=(1,), fletcher32=True)


def write_tensor(group, name, values):
    if "/" in name or name in ("", "."):
        sys.exit(f"convert_torchvision: tensor name '{name}' cannot be stored (no '/', not empty)")
    if values.ndim == 0 or 0 in values.shape:
        sys.exit(f"convert_torchvision: tensor '{name}' has shape {values.shape}; dptrain stores arrays of "
                 "at least one dimension and no empty dimension")
    group.create_dataset(name, data=values.astype("<f4"), dtype="<f4", chunks=chunk_dims(values.shape),
                         fletcher32=True)


def read_config(path):
    """The config's text, and its `name` and `seed` (top-level keys; defaults "run" and 0 as dptrain's)."""
    import yaml

    with open(path, encoding="utf-8") as f:
        text = f.read()
    config = yaml.safe_load(text)
    if not isinstance(config, dict):
        sys.exit(f"convert_torchvision: {path} is not a dptrain config (a mapping of sections)")
    return text, str(config.get("name", "run")), int(config.get("seed", 0))


def write_checkpoint(path, tensors, config_text, run_name, seed):
    """Writes the checkpoint to a temporary file beside `path` and renames it into place."""
    temp = os.path.join(os.path.dirname(os.path.abspath(path)), "." + os.path.basename(path) + f".tmp-{os.getpid()}")
    try:
        with h5py.File(temp, "w", libver=("v110", "v110"), track_order=True) as f:
            f.attrs.create("format", fixed_string(FORMAT))
            f.attrs.create("format_version", np.uint32(FORMAT_VERSION), dtype="<u4")
            f.attrs.create("dptrain_version", fixed_string(dptrain_version()))
            f.attrs.create("run_name", fixed_string(run_name))
            numbers = {"seed": seed, "epoch": 0, "step_in_epoch": 0, "global_step": 0, "steps_per_epoch": 0,
                       "global_batch": 0, "dataset_size": 0, "world_size": 1}
            for key, value in numbers.items():
                f.attrs.create(key, np.uint64(value), dtype="<u8")
            write_text(f, "config", config_text)
            write_text(f, "metrics", "")
            parameters = f.create_group("parameters", track_order=True)
            buffers = f.create_group("buffers", track_order=True)
            for name, values in tensors:
                if name.endswith(SKIPPED_SUFFIXES):
                    continue
                write_tensor(buffers if name.endswith(BUFFER_SUFFIXES) else parameters, name, values)
            optimizer = f.create_group("optimizer", track_order=True)
            optimizer.attrs.create("name", fixed_string("sgd"))
            optimizer.attrs.create("steps", np.uint64(0), dtype="<u8")
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("state_dict", help="a .pth file from torch.save(model.state_dict(), PATH)")
    parser.add_argument("config", help="the dptrain config the weights are for (its text goes into /config)")
    parser.add_argument("output", help="the dptrain checkpoint to write, e.g. resnet18.h5")
    args = parser.parse_args()
    tensors = load_state_dict(args.state_dict)
    config_text, run_name, seed = read_config(args.config)
    write_checkpoint(args.output, tensors, config_text, run_name, seed)
    kept = [(n, v) for n, v in tensors if not n.endswith(SKIPPED_SUFFIXES)]
    buffers = sum(1 for n, _ in kept if n.endswith(BUFFER_SUFFIXES))
    values = sum(v.size for n, v in kept if not n.endswith(BUFFER_SUFFIXES))
    print(f"wrote {args.output}: {len(kept) - buffers} parameter tensors ({values} values), {buffers} buffers")


if __name__ == "__main__":
    main()
