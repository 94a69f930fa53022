#!/usr/bin/env python3
"""Writes a folder of synthetic, learnable PNG images, one sub-folder per class, for data.type: image_folder.

    scripts/make_image_folder.py /tmp/shapes --classes 10 --per-class 500 --size 32
    dptrain train configs/cifar_tutorial.yaml --set data.dir=/tmp/shapes

Class k has its own colour (hues spread around the colour wheel) and stripe pattern (horizontal or
vertical, 2 to 4 cycles per image); every image gets a random phase, brightness and per-pixel noise, so
that telling classes apart takes learning but is possible. Standard library only (PNGs are written with
zlib and struct).
"""

import argparse
import colorsys
import math
import os
import random
import struct
import zlib


def png_bytes(width, height, rows):
    """An 8-bit RGB PNG of `rows` (a list of `height` bytes objects of width * 3 bytes)."""

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # depth 8, colour type 2 (RGB)
    raw = b"".join(b"\x00" + row for row in rows)  # filter type 0 on every row
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def make_image(k, classes, width, height, noise, rng):
    hue = k / classes
    r, g, b = colorsys.hsv_to_rgb(hue, 0.7, 1.0)
    vertical = k % 2 == 1
    cycles = 2 + (k // 2) % 3
    phase = rng.uniform(0, 2 * math.pi)
    brightness = rng.uniform(0.6, 1.0)
    rows = []
    for y in range(height):
        row = bytearray()
        for x in range(width):
            t = (x / width if vertical else y / height) * 2 * math.pi * cycles + phase
            level = brightness * (0.55 + 0.45 * math.sin(t))
            for c in (r, g, b):
                v = 255 * c * level + rng.gauss(0, noise)
                row.append(max(0, min(255, int(round(v)))))
        rows.append(bytes(row))
    return png_bytes(width, height, rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="folder to create (its class sub-folders are replaced)")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--per-class", type=int, default=100, help="images per class")
    parser.add_argument("--size", type=int, default=32, help="width and height in pixels")
    parser.add_argument("--vary-size", type=int, default=0,
                        help="add 0..N pixels at random to each side length (exercises resizing)")
    parser.add_argument("--noise", type=float, default=30.0, help="standard deviation of the pixel noise (0-255)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.classes < 1 or args.per_class < 1 or args.size < 1:
        parser.error("--classes, --per-class and --size must be at least 1")

    rng = random.Random(args.seed)
    for k in range(args.classes):
        folder = os.path.join(args.out, "class_%02d" % k)
        os.makedirs(folder, exist_ok=True)
        for i in range(args.per_class):
            width = args.size + rng.randint(0, args.vary_size)
            height = args.size + rng.randint(0, args.vary_size)
            with open(os.path.join(folder, "%05d.png" % i), "wb") as f:
                f.write(make_image(k, args.classes, width, height, args.noise, rng))
    print("wrote %d images in %d classes to %s" % (args.classes * args.per_class, args.classes, args.out))


if __name__ == "__main__":
    main()
