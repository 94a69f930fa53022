#!/usr/bin/python3
"""Runs an exported ONNX model with software that dptrain did not write.

Usage: onnx_reference.py MODEL.onnx INPUTS.f32 N OUT_DIR

Checks MODEL.onnx with onnx.checker (full check, with shape inference), then runs INPUTS.f32 (N samples
of the model's input shape, float32, row-major) through OpenCV's DNN module and writes its outputs
as OUT_DIR/opencv_logits.f32 and OUT_DIR/opencv_probabilities.f32. Needs Debian's python3-onnx and
python3-opencv (scripts/install-deps.sh).
"""
import os
import sys

import cv2
import numpy as np
import onnx


def main():
    path, inputs_path, n, out_dir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    if dims[0].dim_param != "batch":
        sys.exit(f"{path}: the input's first dimension is not the symbolic 'batch' but {dims[0]}")
    shape = [n] + [d.dim_value for d in dims[1:]]
    x = np.fromfile(inputs_path, dtype=np.float32).reshape(shape)

    net = cv2.dnn.readNetFromONNX(path)
    net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    net.setInput(x)
    logits, probabilities = net.forward(["logits", "probabilities"])
    logits.astype(np.float32).tofile(os.path.join(out_dir, "opencv_logits.f32"))
    probabilities.astype(np.float32).tofile(os.path.join(out_dir, "opencv_probabilities.f32"))
    print(f"{path}: onnx {onnx.__version__} checker passed; OpenCV {cv2.__version__} ran {n} samples, "
          f"logits {list(logits.shape)}")


if __name__ == "__main__":
    main()
