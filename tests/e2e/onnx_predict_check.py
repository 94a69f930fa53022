#!/usr/bin/python3
"""Compares an exported ONNX model, run by OpenCV's DNN module, with `dptrain predict` on the same images.

Usage: onnx_predict_check.py MODEL.onnx PREDICT.jsonl MEAN,MEAN,MEAN STD,STD,STD

PREDICT.jsonl holds `dptrain predict --format jsonl` lines with every class among "top". Each PNG image
whose size is the model's input is read with OpenCV, normalised as the run's data section says
(pixel / 255, then (value - mean) / std per channel; grey images repeat into RGB) and run through the
ONNX file. Prints the largest difference of the probabilities relative to the largest probability and
exits 1 when it is above 1e-4 or when no image could be compared. Needs python3-onnx's sibling
python3-opencv (scripts/install-deps.sh).
"""
import json
import sys

import cv2
import numpy as np


def main():
    model, predictions, mean, std = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    mean = np.array([float(v) for v in mean.split(",")], dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.array([float(v) for v in std.split(",")], dtype=np.float32).reshape(1, 3, 1, 1)
    net = cv2.dnn.readNetFromONNX(model)
    worst, compared = 0.0, 0
    for line in open(predictions):
        record = json.loads(line)
        path = record["image"]
        if not path.endswith(".png"):
            continue  # JPEG decoders differ in their last bits: PNG pixels are the same everywhere
        image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if image.shape[:2] != (12, 12):
            continue  # resized by dptrain: not what this check is about
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        else:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        x = image.astype(np.float32).transpose(2, 0, 1)[np.newaxis] / 255.0
        net.setInput(((x - mean) / std).astype(np.float32))
        probabilities = net.forward("probabilities")[0]
        for entry in record["top"]:
            difference = abs(probabilities[int(entry["class"])] - entry["probability"]) / probabilities.max()
            worst = max(worst, difference)
        compared += 1
    print(f"{compared} images: OpenCV's probabilities against dptrain predict's: max relative difference {worst:.3g}")
    if compared == 0 or worst > 1e-4:
        sys.exit(1)


if __name__ == "__main__":
    main()
